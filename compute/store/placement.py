"""The placement index: what the scheduler reads instead of the fleet.

Per zone, a sorted set of the hosts that may take a server (enabled, service up), scored by the
weigher (minus the free RAM, so the roomiest host comes first and ties go by name). Every write
that changes a host's record, usage or zone rewrites its entry in the same MULTI, WATCHing
``host:{name}:placement`` (the zone it is listed under), so a claim and a disable cannot leave
the index stale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compute.models import Aggregate, Host, HostUsage
from compute.store.aggregates import zones_from_memberships
from compute.store.base import StoreBase


@dataclass(frozen=True)
class ClaimBasis:
    """What a claim's script checks is unchanged (the host's record and usage as stored, the placement
    pointer), as a search read it: a claim on it skips its own read while nobody wrote the host since."""

    raw_host: str
    raw_usage: dict[str, str]
    listed_in: str | None


# KEYS: placement_zones, hosts:unschedulable. ARGV: the placement zone keys' prefix (``Keys.placement("")``),
# the window's size, the highest score it takes. Read only: every zone (sorted), then for each its best
# hosts up to that score (name, score, ...), how many it lists and how many score above; then how many
# hosts are not candidates. What ``placement_zones`` and ``placement_first_window`` read, in one round trip.
PLACEMENT_FIRST_WINDOW = """
local zones = redis.call('SMEMBERS', KEYS[1])
table.sort(zones)
local out = {zones}
for _, zone in ipairs(zones) do
  local key = ARGV[1] .. zone
  out[#out + 1] = redis.call('ZRANGEBYSCORE', key, '-inf', ARGV[3], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
  out[#out + 1] = redis.call('ZCARD', key)
  out[#out + 1] = redis.call('ZCOUNT', key, '(' .. ARGV[3], '+inf')
end
out[#out + 1] = redis.call('SCARD', KEYS[2])
return out
"""


def placement_score(host: Host, usage: HostUsage) -> float:
    """The placement index's score: minus the free RAM the weigher ranks by (compute/scheduler.py)."""
    return -(host.memory_mb * host.ram_allocation_ratio - usage.memory_mb_used)


def schedulable(host: Host | None) -> bool:
    """Nova's ComputeFilter in advance: only enabled hosts whose service is up are candidates.

    A host the fleet control took down leaves the index at once; one whose reports aged past
    service_down_time (no worker alive) is refused at read (``hosts_with_usage`` carries it)."""
    return host is not None and host.enabled and host.in_service


def read_usage(client: Any, key: str) -> HostUsage:
    return HostUsage(**{f: int(v) for f, v in client.hgetall(key).items()})


class PlacementPlan:
    """What a host's placement entry becomes, read under WATCH and queued after ``multi()``."""

    def __init__(self, name: str, listed_in: str | None, host: Host | None, usage: HostUsage | None,
                 zone: str | None) -> None:
        self.name, self.listed_in, self.host, self.usage, self.zone = name, listed_in, host, usage, zone


class PlacementRecords(StoreBase):
    # ---- the placement index ------------------------------------------------------------------
    def _zone_of(self, client: Any, name: str) -> str:
        """The host's zone from its aggregates (O(its aggregates)); ``client`` may be a WATCHing pipe."""
        ids = sorted(int(i) for i in client.smembers(self._keys.host_aggregates(name)))
        for raw in (client.mget([self._keys.aggregate(i) for i in ids]) if ids else []):
            zone = None if raw is None else Aggregate.model_validate_json(raw).availability_zone
            if zone:
                return zone
        return self.default_availability_zone

    def _plan_placement(self, pipe: Any, name: str, host: Host | None, usage: HostUsage | None = None,
                        zone: str | None = None) -> PlacementPlan:
        """Read (WATCHing) what the host's entry is now; ``host`` None: the host is going."""
        key = self._keys.host_placement(name)
        pipe.watch(key)
        listed_in = pipe.get(key)
        if schedulable(host) and usage is None:
            usage_key = self._keys.host_usage(name)
            pipe.watch(usage_key)
            usage = read_usage(pipe, usage_key)
        if schedulable(host) and zone is None:
            pipe.watch(self._keys.host_aggregates(name))
            zone = self._zone_of(pipe, name)
        return PlacementPlan(name, listed_in, host, usage, zone)

    def _queue_placement(self, pipe: Any, plan: PlacementPlan) -> None:
        name, key = plan.name, self._keys.host_placement(plan.name)
        if plan.listed_in is not None and plan.listed_in != plan.zone:
            pipe.zrem(self._keys.placement(plan.listed_in), name)
        if schedulable(plan.host) and plan.zone is not None:
            assert plan.host is not None and plan.usage is not None
            pipe.zadd(self._keys.placement(plan.zone), {name: placement_score(plan.host, plan.usage)})
            pipe.sadd(self._keys.placement_zones(), plan.zone)
            pipe.set(key, plan.zone)
            pipe.srem(self._keys.unschedulable_hosts(), name)
            return
        pipe.delete(key)
        if plan.host is None:
            pipe.srem(self._keys.unschedulable_hosts(), name)
        else:
            pipe.sadd(self._keys.unschedulable_hosts(), name)

    def placement_zones(self) -> list[str]:
        return sorted(self._client.smembers(self._keys.placement_zones()))

    def placement_window(self, zones: list[str], start: int, count: int,
                         max_score: float | None = None) -> list[tuple[str, float]]:
        """Hosts ``start``..``start+count`` of the zones' placement sets merged, best first (score, then
        name); with ``max_score`` only those scoring at most that (free RAM at least ``-max_score``).

        Each set gives its first ``start+count``, so the merge is exact; one round trip."""
        pipe = self._client.pipeline(transaction=False)
        top = "+inf" if max_score is None else repr(max_score)
        for zone in zones:
            pipe.zrangebyscore(self._keys.placement(zone), "-inf", top, start=0, num=start + count,
                               withscores=True)
        merged = sorted(((score, name) for found in pipe.execute() for name, score in found))
        return [(name, score) for score, name in merged[start:start + count]]

    def placement_first_window(self, zones: list[str], count: int, max_score: float
                               ) -> tuple[list[tuple[str, float]], tuple[int, int], int]:
        """``placement_window(zones, 0, count, max_score)``, ``placement_counts(zones, max_score)`` and how
        many hosts are not candidates, in one round trip (what every search reads first)."""
        pipe = self._client.pipeline(transaction=False)
        for zone in zones:
            pipe.zrangebyscore(self._keys.placement(zone), "-inf", repr(max_score), start=0, num=count,
                               withscores=True)
            pipe.zcard(self._keys.placement(zone))
            pipe.zcount(self._keys.placement(zone), f"({max_score!r}", "+inf")
        pipe.scard(self._keys.unschedulable_hosts())
        *found, unschedulable = pipe.execute()
        merged = sorted((score, name) for window in found[0::3] for name, score in window)
        return ([(name, score) for score, name in merged[:count]], (sum(found[1::3]), sum(found[2::3])),
                int(unschedulable))

    def placement_first_window_every_zone(self, count: int, max_score: float
                                          ) -> tuple[list[str], list[tuple[str, float]], tuple[int, int], int]:
        """(``placement_zones()``, then what ``placement_first_window`` answers for them), in one round
        trip: the first read of a search the server's zone does not restrict."""
        zones, *found, unschedulable = self._script(PLACEMENT_FIRST_WINDOW)(
            keys=[self._keys.placement_zones(), self._keys.unschedulable_hosts()],
            args=[self._keys.placement(""), count, repr(max_score)])
        windows = found[0::3]
        merged = sorted((float(flat[i + 1]), flat[i]) for flat in windows for i in range(0, len(flat), 2))
        return (list(zones), [(name, score) for score, name in merged[:count]],
                (sum(found[1::3]), sum(found[2::3])), int(unschedulable))

    def placement_counts(self, zones: list[str], max_score: float) -> tuple[int, int]:
        """(hosts in the zones' placement sets, how many of them score above ``max_score``): one round trip."""
        pipe = self._client.pipeline(transaction=False)
        for zone in zones:
            pipe.zcard(self._keys.placement(zone))
            pipe.zcount(self._keys.placement(zone), f"({max_score!r}", "+inf")
        found = pipe.execute()
        return sum(found[0::2]), sum(found[1::2])

    def placement_tail(self, zones: list[str], min_score: float, count: int) -> list[str]:
        """Up to ``count`` names of the hosts scoring above ``min_score`` (too little free RAM), best first."""
        pipe = self._client.pipeline(transaction=False)
        for zone in zones:
            pipe.zrangebyscore(self._keys.placement(zone), f"({min_score!r}", "+inf", start=0, num=count,
                               withscores=True)
        merged = sorted(((score, name) for found in pipe.execute() for name, score in found))
        return [name for _, name in merged[:count]]

    def placement_sample(self, zone: str, count: int) -> tuple[int, list[str]]:
        """(how many candidates the zone has, the ``count`` best of them)."""
        pipe = self._client.pipeline(transaction=False)
        pipe.zcard(self._keys.placement(zone))
        pipe.zrange(self._keys.placement(zone), 0, count - 1)
        total, names = pipe.execute()
        return int(total), list(names)

    def zones_in_use(self) -> tuple[set[str], set[str]]:
        """(zones with an enabled host, zones whose hosts are all disabled), from the placement index and
        the hosts that are not candidates: O(zones + those hosts), not O(fleet)."""
        zones = self.placement_zones()
        pipe = self._client.pipeline(transaction=False)
        for zone in zones:
            pipe.zcard(self._keys.placement(zone))
        available = {zone for zone, count in zip(zones, pipe.execute()) if count}
        disabled: set[str] = set()
        names = sorted(self._client.smembers(self._keys.unschedulable_hosts()))
        for host in self._as_read(self._load_many(Host, (self._keys.host(n) for n in names))):
            (available if host.enabled else disabled).add(host.availability_zone)
        return available, disabled - available

    def unschedulable_hosts(self, limit: int, total: int | None = None) -> tuple[int, list[Host]]:
        """(how many hosts are disabled or down, up to ``limit`` of their records by name); ``total``:
        the count when the caller has read it already."""
        key = self._keys.unschedulable_hosts()
        total = int(self._client.scard(key)) if total is None else total
        if not total:
            return 0, []
        names = sorted(self._client.srandmember(key, limit) if total > limit else self._client.smembers(key))
        return total, self._as_read(self._load_many(Host, (self._keys.host(n) for n in names)))

    def hosts_with_usage(self, names: list[str]) -> list[tuple[Host, HostUsage]]:
        """The records and usage of just these hosts, zones and liveness included: one round trip (two
        when they are in aggregates) whatever their number or the fleet's."""
        return [(host, usage) for host, usage, _ in self._read_hosts_with_usage(names, pointers=False)]

    def hosts_for_claims(self, names: list[str]) -> list[tuple[Host, HostUsage, ClaimBasis]]:
        """:meth:`hosts_with_usage`, each host with what a claim on it checks (its placement pointer read
        in the same round trip): the scheduler's candidates, so the claim after costs one script."""
        return self._read_hosts_with_usage(names, pointers=True)

    def _read_hosts_with_usage(self, names: list[str], *, pointers: bool
                               ) -> list[tuple[Host, HostUsage, ClaimBasis]]:
        if not names:
            return []
        pipe = self._client.pipeline(transaction=False)
        pipe.mget([self._keys.host(n) for n in names])
        pipe.get(self._keys.fleet_reported_at())
        for name in names:
            pipe.hgetall(self._keys.host_usage(name))
            pipe.smembers(self._keys.host_aggregates(name))
            if pointers:
                pipe.get(self._keys.host_placement(name))
        raw, reported_at, *rest = pipe.execute()
        width = 3 if pointers else 2
        usages, memberships = rest[0::width], rest[1::width]
        listed = rest[2::width] if pointers else [None] * len(names)
        found = [(Host.model_validate_json(r), HostUsage(**{f: int(v) for f, v in u.items()}), ClaimBasis(r, u, p))
                 for r, u, p in zip(raw, usages, listed) if r is not None]
        zones = zones_from_memberships(self._client, self._keys, dict(zip(names, memberships)))
        for host, _, _ in found:
            zone = zones.get(host.name)
            host.availability_zone = zone[0] if zone else self.default_availability_zone
        self._with_liveness([h for h, _, _ in found], reported_at=reported_at)
        return found

    def rebuild_placement_index(self) -> int:
        """Recompute every host's placement entry (stores written before the index existed); O(fleet),
        run when the fleet is seeded, never on a request. Returns how many hosts were indexed."""
        names = sorted(self._client.smembers(self._keys.host_index()))
        for name in names:
            self._reindex_host(name)
        return len(names)

    def _reindex_host(self, name: str) -> None:
        key = self._keys.host(name)

        def body(pipe: Any) -> None:
            plan = self._plan_placement(pipe, name, self._load(Host, key, pipe))
            pipe.multi()
            self._queue_placement(pipe, plan)

        self._transaction(body, key)
