"""Host selection: filters, a weigher and an atomic claim (mirrors nova/scheduler/filters and weights).

Every rejection is explained, so an admin can read in the action's event details why a host
was not chosen: the hosts looked at one by one by name, the others by reason with a count.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from compute import errors
from compute.models import Flavor, Host, HostUsage, Instance
from compute.store import ClaimBasis, Store, capacity_shortfall

# A filter returns None to pass the host, or the reason it rejects it.
HostFilter = Callable[[Host, HostUsage], "str | None"]


# The search reads the placement index (compute/store/placement.py) a window at a time, best host first:
# the first window holds WINDOW hosts and each next one twice as many, until WANTED hosts pass every
# filter or MAX_EXAMINED were looked at (Nova's [scheduler] max_placement_results). Hosts that are not
# examined one by one (disabled or down, in another zone, without the free RAM) are explained by
# reason with a count, naming at most NAMED_PER_REASON of them.
WINDOW = 16
WANTED = 8
MAX_EXAMINED = 1000
NAMED_PER_REASON = 10


@dataclass
class Selection:
    candidates: list[Host]
    rejections: dict[str, str] = field(default_factory=dict)
    more: Callable[[], list[Host]] | None = field(default=None, repr=False)
    # What the search read of each candidate, for its claim (``Store.claim_resources`` ``seen``).
    claim_bases: dict[str, ClaimBasis] = field(default_factory=dict, repr=False)

    def explain(self) -> str:
        top = ", ".join(h.name for h in self.candidates[:NAMED_PER_REASON])
        return f"Candidates: {top or 'none'}. Rejected: {rejected_hosts(self.rejections)}"

    def next_candidates(self) -> list[Host]:
        """The next best hosts the first search did not reach (after its candidates were all taken)."""
        return self.more() if self.more is not None else []


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


def availability_zone_filter(zone: str | None) -> HostFilter:
    """The server's requested zone, as Nova's ``map_az_to_placement_aggregate`` applies it: only the
    hosts of the aggregates with that zone. ``zone`` None (no zone asked, or one no aggregate has,
    such as the default zone) restricts nothing."""
    def check(host: Host, _usage: HostUsage) -> str | None:
        if zone and host.availability_zone != zone:
            return f"AvailabilityZoneFilter: host is in {host.availability_zone}, not {zone}"
        return None

    return check


def free_ram_weight(host: Host, usage: HostUsage) -> float:
    """Spread: the host with the most free RAM first (Nova's default RAMWeigher); the placement index's
    score is this, negated (compute/store/placement.py ``placement_score``)."""
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
    """The hosts that pass every filter, best first, reading O(window) hosts whatever the fleet's size."""
    zone = instance.availability_zone
    restricted = zone if zone and zone in store.aggregate_zones() else None
    filters: list[HostFilter] = [compute_filter, availability_zone_filter(restricted), *extra_filters,
                                 capacity_filter(flavor)]
    search = _Search(store, filters, {h for h in ignore_hosts if h})
    if requested_host is not None:
        found = search.read_candidates([requested_host])
        if not found:
            raise errors.NoValidHost(f"Compute host {requested_host} could not be found.")
        search.selection.candidates = search.examine(found)
        return search.selection
    search.run([restricted] if restricted else None, flavor)
    search.explain_unexamined(search.zones or [], restricted)
    return search.selection


class _Search:
    """One select's walk over the placement index, and the rejections it gathers."""

    def __init__(self, store: Store, filters: list[HostFilter], ignored: set[str]) -> None:
        self.store, self.filters, self.ignored = store, filters, ignored
        self.selection = Selection(candidates=[])
        self.examined = 0
        self.exhausted = False
        self.zones: list[str] | None = None  # None until the first window reads every zone
        self.max_score: float = 0.0
        self.window = WINDOW
        self.counts: tuple[int, int] | None = None  # (candidates, those without the RAM), read once
        self.unschedulable: int | None = None

    def examine(self, pairs: list[tuple[Host, HostUsage]]) -> list[Host]:
        passed = []
        for host, usage in pairs:
            if host.name in self.ignored:
                self.selection.rejections[host.name] = "already tried or excluded"
                continue
            reason = next((r for f in self.filters if (r := f(host, usage)) is not None), None)
            if reason is not None:
                self.selection.rejections[host.name] = reason
            else:
                passed.append((-free_ram_weight(host, usage), host.name, host))
        return [h for _, _, h in sorted(passed, key=lambda t: (t[0], t[1]))]

    def run(self, zones: list[str] | None, flavor: Flavor) -> None:
        """``zones`` None: every zone of the placement index, read with the first window."""
        self.zones, self.max_score = zones, -float(flavor.ram)
        while len(self.selection.candidates) < WANTED and not self.exhausted:
            self.selection.candidates += self.step()
        self.selection.more = self.more

    def step(self) -> list[Host]:
        """One more window of the index: only hosts with the flavor's RAM free are read."""
        if self.examined >= MAX_EXAMINED or self.zones == []:
            self.exhausted = True
            return []
        asked, self.window = min(self.window, MAX_EXAMINED - self.examined), self.window * 2
        if self.zones is None:  # every zone, read with the first window
            self.zones, found, self.counts, self.unschedulable = self.store.placement_first_window_every_zone(
                asked, self.max_score)
        elif self.counts is None:  # the first window brings the counts the explanation needs
            found, self.counts, self.unschedulable = self.store.placement_first_window(
                self.zones, asked, self.max_score)
        else:
            found = self.store.placement_window(self.zones, self.examined, asked, self.max_score)
        if len(found) < asked:
            self.exhausted = True  # the index has no more: no empty read to find it out
        if not found:
            return []
        self.examined += len(found)
        return self.examine(self.read_candidates([name for name, _ in found]))

    def read_candidates(self, names: list[str]) -> list[tuple[Host, HostUsage]]:
        """The hosts and their usage, keeping what their claims will check."""
        pairs = []
        for host, usage, basis in self.store.hosts_for_claims(names):
            self.selection.claim_bases[host.name] = basis
            pairs.append((host, usage))
        return pairs

    def more(self) -> list[Host]:
        found: list[Host] = []
        while not found and not self.exhausted:
            found = self.step()
        self.selection.candidates += found
        return found

    def explain_unexamined(self, zones: list[str], restricted: str | None) -> None:
        """The hosts no window reached, by reason: a few named, the rest counted. O(1) round trips."""
        rejections = self.selection.rejections
        total, short = self.counts if self.counts is not None else self.store.placement_counts(zones, self.max_score)
        fitting = total - short
        if short:
            named = self.store.placement_tail(zones, self.max_score, NAMED_PER_REASON)
            self.examine(self.store.hosts_with_usage(named))
            if short > len(named):
                rejections[group_key(short - len(named))] = "ResourceFilter: not enough memory_mb"
        if self.exhausted and self.examined >= MAX_EXAMINED and fitting > self.examined:
            rejections[group_key(fitting - self.examined)] = (
                f"not examined: the search stops after {MAX_EXAMINED} hosts (max_placement_results)")
        if restricted:
            for zone in self.store.placement_zones():
                if zone != restricted:
                    count, names = self.store.placement_sample(zone, NAMED_PER_REASON)
                    for name in names:
                        rejections.setdefault(name, f"AvailabilityZoneFilter: host is in {zone}, not {restricted}")
                    if count > len(names):
                        rejections[group_key(count - len(names), zone)] = (
                            f"AvailabilityZoneFilter: host is in {zone}, not {restricted}")
        down, sample = self.store.unschedulable_hosts(NAMED_PER_REASON, self.unschedulable)
        self.examine([(host, HostUsage()) for host in sample])  # the ComputeFilter names why; usage is moot
        if down > len(sample):
            rejections[group_key(down - len(sample), "disabled or down")] = "ComputeFilter: service disabled or down"
        for name in self.ignored - set(rejections):
            rejections[name] = "already tried or excluded"
        compact(rejections)


def group_key(count: int, what: str = "") -> str:
    """The rejections entry that stands for ``count`` hosts not named one by one."""
    return f"({count} more hosts{' ' + what if what else ''})"


def is_group(key: str) -> bool:
    return key.startswith("(") and key.endswith(")")


def compact(rejections: dict[str, str]) -> None:
    """Keep NAMED_PER_REASON hosts per reason (by name); count the others in one entry per reason."""
    by_reason: dict[str, list[str]] = {}
    for host, why in rejections.items():
        if not is_group(host):
            by_reason.setdefault(why, []).append(host)
    for why, hosts in by_reason.items():
        if len(hosts) > NAMED_PER_REASON:
            extra = sorted(hosts)[NAMED_PER_REASON:]
            for host in extra:
                del rejections[host]
            key, n = group_key(len(extra), "examined"), 1
            while key in rejections:
                n += 1
                key = group_key(len(extra), f"examined, group {n}")
            rejections[key] = why


def claim_first_fit(store: Store, instance_id: str, flavor: Flavor, selection: Selection) -> Host:
    """Claim on the best candidate; a host filled by a concurrent claim is skipped (and the search
    goes on past the first window when every candidate was taken meanwhile)."""
    batch = list(selection.candidates)
    while batch:
        for host in batch:
            try:
                store.claim_resources(host.name, instance_id, flavor, seen=selection.claim_bases.get(host.name))
                return host
            except errors.InsufficientResources as exc:
                selection.rejections[host.name] = f"claim lost to a concurrent request: {exc.message}"
        batch = selection.next_candidates()
    # The host-by-host explanation goes on its own line: admins read it in the event details, and
    # everyone else the Nova message before it (public_reason), in the server's fault too.
    raise errors.NoValidHost(with_explanation("There are not enough hosts available.", selection.rejections))


# ---- how a search is told ---------------------------------------------------------------------
EXPLANATION_SEPARATOR = "\n"


def rejected_hosts(rejections: dict[str, str]) -> str:
    """``host: why; ...`` by host name, then the counted groups (``(N more hosts ...): why``)."""
    order = sorted(rejections.items(), key=lambda item: (is_group(item[0]), item[0]))
    return "; ".join(f"{host}: {why}" for host, why in order)


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
