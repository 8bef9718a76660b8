"""Nova's quotas (nova/quota.py ``DbQuotaDriver``) for what this service serves.

Limits resolve as in Nova: a user's override, else the project's override, else the
``default`` quota class, else the ``[quota]`` option; -1 is unlimited. Usage is counted
as Nova counts it from its instances table: every server of the project (or user) that
is not deleted, a server in ERROR included. The counters live in Redis beside the server
records (compute/store/quotas.py) and the create of a server checks them in the same
WATCH/MULTI that writes it, so no number of concurrent creates can pass a limit.

The messages are Nova's (nova/exception.py, nova/compute/utils.py, quota_sets.py).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from compute import errors
from compute.models import Flavor, QuotaSnapshot
from compute.settings import QuotaOptions

UNLIMITED = -1
DEFAULT_CLASS = "default"
MAX_LIMIT = 0x7FFFFFFF  # nova/db/constants.py MAX_INT

# Nova's QUOTAS.resources order (sorted names).
RESOURCES = (
    "cores", "fixed_ips", "floating_ips", "injected_file_content_bytes", "injected_file_path_bytes",
    "injected_files", "instances", "key_pairs", "metadata_items", "ram", "security_group_rules",
    "security_groups", "server_group_members", "server_groups",
)
# The resources whose usage is counted here (the rest are limits only, or have nothing to count).
COUNTED = ("instances", "cores", "ram")
# nova-network leftovers: no option, always -1 unless set.
NETWORK_RESOURCES = ("fixed_ips", "floating_ips", "security_group_rules", "security_groups")
INJECTED_FILE_RESOURCES = ("injected_file_content_bytes", "injected_file_path_bytes", "injected_files")
# The [quota] option behind each resource (Nova's names).
_OPTION = {
    "cores": "cores", "instances": "instances", "ram": "ram", "metadata_items": "metadata_items",
    "injected_files": "injected_files", "injected_file_content_bytes": "injected_file_content_bytes",
    "injected_file_path_bytes": "injected_file_path_length", "key_pairs": "key_pairs",
    "server_groups": "server_groups", "server_group_members": "server_group_members",
}


# ---- limits -----------------------------------------------------------------------------------
def config_defaults(options: QuotaOptions) -> dict[str, int]:
    """``resource.default``: the [quota] options."""
    return {r: int(getattr(options, _OPTION[r])) if r in _OPTION else UNLIMITED for r in RESOURCES}


def class_limits(options: QuotaOptions, overrides: Mapping[str, int]) -> dict[str, int]:
    """A quota class: its overrides over the options (Nova's ``get_class_quotas``)."""
    base = config_defaults(options)
    return {r: int(overrides.get(r, base[r])) for r in RESOURCES}


def defaults(options: QuotaOptions, snap: QuotaSnapshot) -> dict[str, int]:
    """Nova's ``get_defaults``: the ``default`` class over the options."""
    return class_limits(options, snap.class_limits)


def project_limits(options: QuotaOptions, snap: QuotaSnapshot) -> dict[str, int]:
    base = defaults(options, snap)
    return {r: int(snap.project_limits.get(r, base[r])) for r in RESOURCES}


def user_limits(options: QuotaOptions, snap: QuotaSnapshot) -> dict[str, int]:
    """A user's limits default to the project's (``get_user_quotas``)."""
    base = project_limits(options, snap)
    return {r: int(snap.user_limits.get(r, base[r])) for r in RESOURCES}


def in_use(snap: QuotaSnapshot, *, user: bool = False) -> dict[str, int]:
    """Usage as the quota views show it: counted resources from the counters, the rest 0."""
    usage = snap.user_usage if user else snap.project_usage
    return {r: int(usage.get(r, 0)) if r in COUNTED else 0 for r in RESOURCES}


def limits(options: QuotaOptions, snap: QuotaSnapshot, *, user: bool = False) -> dict[str, int]:
    return user_limits(options, snap) if user else project_limits(options, snap)


def detail(options: QuotaOptions, snap: QuotaSnapshot, *, user: bool = False) -> dict[str, dict[str, int]]:
    """The /detail view: limit, in_use and reserved (always 0 since Nova dropped reservations)."""
    found = limits(options, snap, user=user)
    used = in_use(snap, user=user)
    return {r: {"limit": found[r], "in_use": used[r], "reserved": 0} for r in RESOURCES}


def _unlimited(value: int) -> bool:
    return value <= UNLIMITED


def _sum(a: int, b: int) -> int:
    return UNLIMITED if _unlimited(a) or _unlimited(b) else a + b


def _sub(a: int, b: int) -> int:
    return UNLIMITED if _unlimited(a) or _unlimited(b) else a - b


# ---- server create ----------------------------------------------------------------------------
def instance_deltas(flavor: Flavor, count: int = 1) -> dict[str, int]:
    return {"instances": count, "cores": count * flavor.vcpus, "ram": count * flavor.ram}


def instance_create_check(options: QuotaOptions, flavor: Flavor, count: int = 1) -> Callable[[QuotaSnapshot], None]:
    """The check of a create of exactly ``count`` servers: raises OverQuota, else lets it through."""
    count_allowed = instance_create_count(options, flavor, count, count)

    def check(snap: QuotaSnapshot) -> None:
        count_allowed(snap)

    return check


def instance_create_count(options: QuotaOptions, flavor: Flavor, min_count: int,
                          max_count: int) -> Callable[[QuotaSnapshot], int]:
    """How many of ``min_count``..``max_count`` servers the quotas let a request create
    (``check_num_instances_quota``), run by the store inside the create's WATCH.

    ``max_count`` if it fits; else as many as the headroom of the scope that is over allows
    (instances, and cores and ram per server), if that is at least ``min_count``; else
    OverQuota with Nova's TooManyInstances text, the count asked for as ``min-max``:
    ``Quota exceeded for instances: Requested 1, but already used 10 of 10 instances``.
    The user's usage is checked only when the user has an instances, cores or ram override,
    as in Nova; otherwise the project's.
    """
    per_server = instance_deltas(flavor)

    def overs_for(snap: QuotaSnapshot, count: int) -> tuple[list[str], bool]:
        project, user = project_limits(options, snap), user_limits(options, snap)
        per_user = any(r in snap.user_limits for r in COUNTED)
        deltas = instance_deltas(flavor, count)
        overs: list[str] = []
        over_user = False
        for r in COUNTED:
            if project[r] >= 0 and project[r] < int(snap.project_usage.get(r, 0)) + deltas[r]:
                overs.append(r)
            elif per_user and user[r] >= 0 and user[r] < int(snap.user_usage.get(r, 0)) + deltas[r]:
                overs.append(r)
                over_user = True
        return sorted(overs), over_user

    def count_allowed(snap: QuotaSnapshot) -> int:
        count = max_count
        while True:
            overs, over_user = overs_for(snap, count)
            if not overs:
                return count
            quotas = user_limits(options, snap) if over_user else project_limits(options, snap)
            usage = snap.user_usage if over_user else snap.project_usage
            used = {r: int(usage.get(r, 0)) for r in COUNTED}
            allowed = min(
                ((quotas[r] - used[r]) // per_server[r] for r in COUNTED if quotas[r] >= 0 and per_server[r] > 0),
                default=0)
            if min_count <= allowed < count:
                count = allowed  # Nova checks again with the smaller count (the other scope may be over)
                continue
            requested = {"instances": str(min_count) if min_count == max_count else f"{min_count}-{max_count}",
                         "cores": str(max_count * flavor.vcpus), "ram": str(max_count * flavor.ram)}
            names = ", ".join(overs)
            raise errors.OverQuota(
                f"Quota exceeded for {names}: Requested {', '.join(requested[r] for r in overs)}, "
                f"but already used {', '.join(str(used[r]) for r in overs)} of "
                f"{', '.join(str(quotas[r]) for r in overs)} {names}")

    return count_allowed


# ---- absolute limits --------------------------------------------------------------------------
def metadata_over(options: QuotaOptions, snap: QuotaSnapshot, count: int) -> int | None:
    """Nova's ``limit_check(metadata_items=count)``: the project limit to report when over, else None."""
    project = project_limits(options, snap)["metadata_items"]
    user = user_limits(options, snap)["metadata_items"]
    if (project >= 0 and project < count) or (user >= 0 and user < count):
        return project
    return None


def check_server_metadata(options: QuotaOptions, snap: QuotaSnapshot, metadata: Mapping[str, Any] | None) -> None:
    """Server metadata (compute/api.py ``_check_metadata_properties_quota``)."""
    if not metadata:
        return
    allowed = metadata_over(options, snap, len(metadata))
    if allowed is not None:
        raise errors.OverQuota(f"Maximum number of metadata items exceeds {allowed}")


def check_image_metadata(options: QuotaOptions, snap: QuotaSnapshot, metadata: Mapping[str, Any] | None) -> None:
    """Backup metadata (api/openstack/common.py ``check_img_metadata_properties_quota``)."""
    if metadata and metadata_over(options, snap, len(metadata)) is not None:
        raise errors.OverQuota("Image metadata limit exceeded")


# ---- os-quota-sets update ---------------------------------------------------------------------
def settable(options: QuotaOptions, snap: QuotaSnapshot, *, user: bool) -> dict[str, tuple[int, int]]:
    """(minimum, maximum) per resource, Nova's ``get_settable_quotas``.

    Project: at least what is used and what its users' overrides already hand out; no
    maximum. User: at least what the user uses, at most what the project has not handed
    out to users plus the user's own current override.
    """
    project = project_limits(options, snap)
    project_used = in_use(snap)
    remains = {r: project[r] - int(snap.user_limit_sums.get(r, 0)) for r in RESOURCES}
    if user:
        user_used = in_use(snap, user=True)
        return {r: (user_used[r], _sum(remains[r], int(snap.user_limits.get(r, 0)))) for r in RESOURCES}
    return {r: (max(_sub(project[r], remains[r]), project_used[r]), UNLIMITED) for r in RESOURCES}


def validate_update(options: QuotaOptions, values: Iterable[tuple[str, int]], *, user: bool,
                    force: bool) -> Callable[[QuotaSnapshot], None]:
    """The check the store runs under the update's WATCH: Nova's ``_validate_quota_limit``."""
    values = list(values)

    def check(snap: QuotaSnapshot) -> None:
        if force:
            return
        bounds = settable(options, snap, user=user)
        for resource, limit in values:
            minimum, maximum = bounds[resource]
            if _inf(limit) < _inf(minimum):
                raise errors.Invalid(f"Quota limit {limit} for {resource} must be greater than or equal to "
                                     f"already used and reserved {minimum}.")
            if _inf(limit) > _inf(maximum):
                raise errors.Invalid(f"Quota limit {limit} for {resource} must be less than or equal to "
                                     f"{maximum}.")

    return check


def _inf(value: int) -> float:
    return float("inf") if value == UNLIMITED else value
