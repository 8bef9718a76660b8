"""Host selection: filters, a weigher and an atomic claim (mirrors nova/scheduler/filters and weights).

Every rejected host is explained, so an admin can read in the action's event details
why each candidate was not chosen.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from compute import errors
from compute.models import Flavor, Host, HostUsage, Instance
from compute.store import Store, capacity_shortfall

# A filter returns None to pass the host, or the reason it rejects it.
HostFilter = Callable[[Host, HostUsage], "str | None"]


@dataclass
class Selection:
    candidates: list[Host]
    rejections: dict[str, str] = field(default_factory=dict)

    def explain(self) -> str:
        return rejected_hosts(self.rejections)


def compute_filter(host: Host, _usage: HostUsage) -> str | None:
    """Nova's ComputeFilter (and the compute_status_filter pre-filter): disabled or down services take nothing."""
    if not host.enabled:
        return f"ComputeFilter: service disabled ({host.disabled_reason or 'no reason'})"
    if not host.in_service:
        return "ComputeFilter: service is down"
    return None


def capacity_filter(flavor: Flavor) -> HostFilter:
    def check(host: Host, usage: HostUsage) -> str | None:
        short = capacity_shortfall(host, usage, flavor)
        return f"ResourceFilter: not enough {short}" if short else None

    return check


def availability_zone_filter(zone: str | None, members: set[str] | None) -> HostFilter:
    """The server's requested zone, as Nova's ``map_az_to_placement_aggregate`` applies it: only the
    hosts of the aggregates with that zone, and no restriction when no aggregate has it (``members``
    None, e.g. the default zone). A server created without a zone may go anywhere."""
    def check(host: Host, _usage: HostUsage) -> str | None:
        if zone and members is not None and host.name not in members:
            return f"AvailabilityZoneFilter: host is in {host.availability_zone}, not {zone}"
        return None

    return check


def free_ram_weight(host: Host, usage: HostUsage) -> float:
    """Spread: the host with the most free RAM first (Nova's default RAMWeigher)."""
    return host.memory_mb * host.ram_allocation_ratio - usage.memory_mb_used


def select_hosts(
    store: Store,
    instance: Instance,
    flavor: Flavor,
    *,
    requested_host: str | None = None,
    ignore_hosts: Iterable[str] = (),
    extra_filters: Iterable[HostFilter] = (),
) -> Selection:
    ignored = set(ignore_hosts)
    hosts = store.list_hosts()
    if requested_host is not None:
        if requested_host not in {h.name for h in hosts}:
            raise errors.NoValidHost(f"Compute host {requested_host} could not be found.")
        hosts = [h for h in hosts if h.name == requested_host]
    zone = instance.availability_zone
    filters: list[HostFilter] = [
        compute_filter, availability_zone_filter(zone, store.hosts_in_zone(zone) if zone else None),
        *extra_filters, capacity_filter(flavor),
    ]
    selection = Selection(candidates=[])
    scored = []
    for host in hosts:
        if host.name in ignored:
            selection.rejections[host.name] = "already tried or excluded"
            continue
        usage = store.get_usage(host.name)
        reason = next((r for f in filters if (r := f(host, usage)) is not None), None)
        if reason is not None:
            selection.rejections[host.name] = reason
            continue
        scored.append((free_ram_weight(host, usage), host.name, host))
    selection.candidates = [h for _, _, h in sorted(scored, key=lambda t: (-t[0], t[1]))]
    return selection


def claim_first_fit(store: Store, instance_id: str, flavor: Flavor, selection: Selection) -> Host:
    """Claim on the best candidate; a host filled by a concurrent claim is skipped."""
    for host in selection.candidates:
        try:
            store.claim_resources(host.name, instance_id, flavor)
            return host
        except errors.InsufficientResources as exc:
            selection.rejections[host.name] = f"claim lost to a concurrent request: {exc.message}"
    # The host-by-host explanation goes on its own line: admins read it in the event details, and
    # everyone else the Nova message before it (public_reason), in the server's fault too.
    raise errors.NoValidHost(with_explanation("There are not enough hosts available.", selection.rejections))


# ---- how a search is told ---------------------------------------------------------------------
EXPLANATION_SEPARATOR = "\n"


def rejected_hosts(rejections: dict[str, str]) -> str:
    return "; ".join(f"{host}: {why}" for host, why in sorted(rejections.items()))


def explain(rejections: dict[str, str], chosen: str | None = None) -> str:
    """One line for admins (event details): every candidate host and why it was not the one."""
    head = f"Chose {chosen}. " if chosen else ""
    return f"{head}Rejected: {rejected_hosts(rejections)}" if rejections else f"{head}No other host was considered"


def with_explanation(message: str, rejections: dict[str, str]) -> str:
    """A failure's message, then the explanation on its own line (which only admins are shown)."""
    return f"{message}{EXPLANATION_SEPARATOR}{explain(rejections)}"


def public_reason(details: str) -> str:
    """The Nova message a failure starts with, without the host-by-host explanation."""
    return details.split(EXPLANATION_SEPARATOR, 1)[0]
