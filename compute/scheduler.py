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
        return "; ".join(f"{h}: {why}" for h, why in sorted(self.rejections.items()))


def compute_filter(host: Host, _usage: HostUsage) -> str | None:
    if not host.enabled:
        return f"ComputeFilter: service disabled ({host.disabled_reason or 'no reason'})"
    if not host.up or host.forced_down:
        return "ComputeFilter: service is down"
    return None


def capacity_filter(flavor: Flavor) -> HostFilter:
    def check(host: Host, usage: HostUsage) -> str | None:
        short = capacity_shortfall(host, usage, flavor)
        return f"ResourceFilter: not enough {short}" if short else None

    return check


def availability_zone_filter(zone: str | None) -> HostFilter:
    def check(host: Host, _usage: HostUsage) -> str | None:
        if zone and host.availability_zone != zone:
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
    filters: list[HostFilter] = [
        compute_filter, availability_zone_filter(instance.availability_zone), *extra_filters,
        capacity_filter(flavor),
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
    detail = selection.explain()
    raise errors.NoValidHost(f"There are not enough hosts available. {detail}".strip())
