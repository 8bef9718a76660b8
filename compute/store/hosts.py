"""Compute hosts, their usage counters, the per-(host, instance) resource claims, and the placement index.

The placement index is what the scheduler reads instead of the fleet: per zone, a sorted set of
the hosts that may take a server (enabled, service up), scored by the weigher (minus the free
RAM, so the roomiest host comes first and ties go by name). Every write that changes a host's
record, usage or zone rewrites its entry in the same MULTI, WATCHing ``host:{name}:placement``
(the zone it is listed under), so a claim and a disable cannot leave the index stale.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from compute import errors
from compute.models import Aggregate, Flavor, Host, HostUsage, Instance, utcnow
from compute.store.aggregates import (
    every_host_zone,
    read_host_zones,
    zones_from_memberships,
)
from compute.store.base import StoreBase, iso_to_epoch

# A host's zone is decided by its aggregates, and whether it reports at each read: never stored with it.
_NOT_STORED = {"availability_zone", "reporting"}
HOSTING_INSTANCES = ("Unable to delete compute service that is hosting instances. "
                     "Migrate or delete the instances first.")

# Shared by CLAIM and RELEASE_CLAIM: whether a record, a hash (ARGV[at] = its field count, then
# field, value pairs) is as the caller read it (an absent string reads as ''); and the move of
# ``hosts:totals`` by a claim's amounts (ARGV[6] '1': the host is enabled; a zero is not written).
_UNCHANGED = """
local function same_string(key, expected) return (redis.call('GET', key) or '') == expected end
local function same_hash(key, at)
  local n = tonumber(ARGV[at])
  if redis.call('HLEN', key) ~= n then return false end
  for i = at + 1, at + 2 * n, 2 do
    if redis.call('HGET', key, ARGV[i]) ~= ARGV[i + 1] then return false end
  end
  return true
end
local function after_hash(at) return at + 1 + 2 * tonumber(ARGV[at]) end
local function move_totals(sign, vcpus, ram, disk)
  if ARGV[6] ~= '1' then return end
  local moves = {vcpus_used = vcpus, memory_mb_used = ram, local_gb_used = disk, running_vms = 1}
  for _, field in ipairs({'vcpus_used', 'memory_mb_used', 'local_gb_used', 'running_vms'}) do
    local amount = sign * tonumber(moves[field])
    if amount ~= 0 then redis.call('HINCRBY', KEYS[7], field, amount) end
  end
end
"""

# KEYS: claim, host, usage, placement pointer, host's claims, server's claims, hosts:totals[, placement
# zone index]. ARGV: host JSON, placement pointer ('' for none), new placement score ('' for none),
# server id, host name, '1' when the totals move, the claim (vcpus, ram, disk) as a hash, the usage as
# read as a hash. 1 when the claim exists afterwards, 0 (nothing written) when what was read changed.
CLAIM = _UNCHANGED + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local at = after_hash(7)
if not (same_string(KEYS[2], ARGV[1]) and same_string(KEYS[4], ARGV[2]) and same_hash(KEYS[3], at)) then return 0 end
local vcpus, ram, disk = ARGV[9], ARGV[11], ARGV[13]
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[8], ARGV[3], ARGV[5]) end
redis.call('HINCRBY', KEYS[3], 'vcpus_used', vcpus)
redis.call('HINCRBY', KEYS[3], 'memory_mb_used', ram)
redis.call('HINCRBY', KEYS[3], 'local_gb_used', disk)
redis.call('HINCRBY', KEYS[3], 'running_vms', 1)
move_totals(1, vcpus, ram, disk)
redis.call('HSET', KEYS[1], 'vcpus', vcpus, 'ram', ram, 'disk', disk)
redis.call('SADD', KEYS[5], ARGV[4])
redis.call('SADD', KEYS[6], ARGV[5])
return 1
"""

# KEYS and ARGV as CLAIM's, the host JSON '' for none and the claim as read. 1 when released, 0
# (nothing written) when what the caller read has changed.
RELEASE_CLAIM = _UNCHANGED + """
local at = after_hash(7)
if not (same_hash(KEYS[1], 7) and same_string(KEYS[2], ARGV[1]) and same_string(KEYS[4], ARGV[2])
        and same_hash(KEYS[3], at)) then return 0 end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[8], ARGV[3], ARGV[5]) end
local claim = redis.call('HMGET', KEYS[1], 'vcpus', 'ram', 'disk')
redis.call('HINCRBY', KEYS[3], 'vcpus_used', -tonumber(claim[1]))
redis.call('HINCRBY', KEYS[3], 'memory_mb_used', -tonumber(claim[2]))
redis.call('HINCRBY', KEYS[3], 'local_gb_used', -tonumber(claim[3]))
redis.call('HINCRBY', KEYS[3], 'running_vms', -1)
move_totals(-1, claim[1], claim[2], claim[3])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[5], ARGV[4])
redis.call('SREM', KEYS[6], ARGV[5])
return 1
"""


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


def hash_args(fields: dict[str, Any]) -> list[Any]:
    """A hash as the scripts above take it: its field count, then field, value pairs."""
    return [len(fields), *(item for pair in fields.items() for item in pair)]


def moves_totals(host: Host | None) -> str:
    """The scripts' flag: a claim on an enabled host moves ``hosts:totals`` (``statistics_share``)."""
    return "1" if host is not None and host.enabled else ""


def capacity_shortfall(host: Host, usage: HostUsage, flavor: Flavor) -> str | None:
    """The first resource that ``flavor`` would over-commit on ``host``, or None when it fits."""
    if usage.vcpus_used + flavor.vcpus > host.vcpus * host.cpu_allocation_ratio:
        return "vcpus"
    if usage.memory_mb_used + flavor.ram > host.memory_mb * host.ram_allocation_ratio:
        return "memory_mb"
    if usage.local_gb_used + flavor.total_disk_gb > host.local_gb * host.disk_allocation_ratio:
        return "local_gb"
    return None


def placement_score(host: Host, usage: HostUsage) -> float:
    """The placement index's score: minus the free RAM the weigher ranks by (compute/scheduler.py)."""
    return -(host.memory_mb * host.ram_allocation_ratio - usage.memory_mb_used)


def schedulable(host: Host | None) -> bool:
    """Nova's ComputeFilter in advance: only enabled hosts whose service is up are candidates.

    A host the fleet control took down leaves the index at once; one whose reports aged past
    service_down_time (no worker alive) is refused at read (``hosts_with_usage`` carries it)."""
    return host is not None and host.enabled and host.in_service


TOTAL_FIELDS = ("count", "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
                "running_vms")
TRIGRAM = 3


def statistics_share(host: Host | None, usage: HostUsage) -> dict[str, int]:
    """What a host adds to ``hosts:totals``: Nova's compute_node_statistics sums the compute nodes of
    enabled nova-compute services (up or down), so a disabled or missing host adds nothing."""
    if host is None or not host.enabled:
        return dict.fromkeys(TOTAL_FIELDS, 0)
    return {"count": 1, "vcpus": host.vcpus, "memory_mb": host.memory_mb, "local_gb": host.local_gb,
            "vcpus_used": usage.vcpus_used, "memory_mb_used": usage.memory_mb_used,
            "local_gb_used": usage.local_gb_used, "running_vms": usage.running_vms}


def statistics_change(before: Host | None, after: Host | None, usage: HostUsage) -> dict[str, int]:
    old, new = statistics_share(before, usage), statistics_share(after, usage)
    return {f: new[f] - old[f] for f in TOTAL_FIELDS}


def trigrams(name: str) -> set[str]:
    return {name[i:i + TRIGRAM] for i in range(len(name) - TRIGRAM + 1)}


def read_usage(client: Any, key: str) -> HostUsage:
    return HostUsage(**{f: int(v) for f, v in client.hgetall(key).items()})


class PlacementPlan:
    """What a host's placement entry becomes, read under WATCH and queued after ``multi()``."""

    def __init__(self, name: str, listed_in: str | None, host: Host | None, usage: HostUsage | None,
                 zone: str | None) -> None:
        self.name, self.listed_in, self.host, self.usage, self.zone = name, listed_in, host, usage, zone


class HostRecords(StoreBase):
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

    # ---- records ------------------------------------------------------------------------------
    def put_host(self, host: Host) -> None:
        key = self._keys.host(host.name)

        def body(pipe: Any) -> None:
            before, usage = self._watched_host_and_usage(pipe, host.name)
            plan = self._plan_placement(pipe, host.name, host, usage)
            pipe.multi()
            pipe.set(key, host.model_dump_json(exclude=_NOT_STORED))
            pipe.sadd(self._keys.host_index(), host.name)
            self._queue_host_ids(pipe, [host])
            if before is None:
                self._queue_name_index(pipe, [host], add=True)
            self._queue_totals(pipe, statistics_change(before, host, usage))
            self._queue_placement(pipe, plan)

        self._transaction(body, key)

    def _watched_usage(self, pipe: Any, name: str) -> HostUsage:
        usage_key = self._keys.host_usage(name)
        pipe.watch(usage_key)
        return read_usage(pipe, usage_key)

    def _watched_host_and_usage(self, pipe: Any, name: str) -> tuple[Host | None, HostUsage]:
        """The stored record and usage of a host, both WATCHed: what its ``hosts:totals`` share is now."""
        pipe.watch(self._keys.host(name))
        return self._load(Host, self._keys.host(name), pipe), self._watched_usage(pipe, name)

    def _queue_host_ids(self, pipe: Any, hosts: list[Host]) -> None:
        """The hypervisor lookups: by service id (the list's order and marker) and by uuid (2.53+)."""
        if hosts:
            pipe.zadd(self._keys.hosts_by_service_id(), {h.name: h.service_id for h in hosts})
            pipe.hset(self._keys.hosts_by_uuid(), mapping={h.uuid: h.name for h in hosts})

    def _queue_totals(self, pipe: Any, change: dict[str, int]) -> None:
        """Move ``hosts:totals`` by ``change``; a change naming ``count`` writes it even at 0, so the key exists
        once any host was written (its absence is what ``rebuild_listing_indexes`` looks for)."""
        key = self._keys.host_totals()
        for field in TOTAL_FIELDS:
            if change.get(field) or (field == "count" and field in change):
                pipe.hincrby(key, field, change.get(field, 0))

    def _queue_name_index(self, pipe: Any, hosts: list[Host], *, add: bool) -> None:
        """The hostname search's trigram sets (``hosts:trigram:{trigram}``) and the service uuid lookup."""
        by_trigram: dict[str, list[str]] = {}
        for host in hosts:
            for gram in trigrams(host.name):
                by_trigram.setdefault(gram, []).append(host.name)
        for gram, members in by_trigram.items():
            (pipe.sadd if add else pipe.srem)(self._keys.host_trigram(gram), *members)
        if hosts and add:
            pipe.hset(self._keys.hosts_by_service_uuid(), mapping={h.service_uuid: h.name for h in hosts})
        elif hosts:
            pipe.hdel(self._keys.hosts_by_service_uuid(), *[h.service_uuid for h in hosts])

    def host_statistics(self) -> dict[str, int]:
        """``hosts:totals``: the enabled hosts' sums, one read whatever the fleet."""
        found = self._client.hgetall(self._keys.host_totals())
        return {f: int(found.get(f, 0)) for f in TOTAL_FIELDS}

    def hosts_named_like(self, pattern: str) -> list[str]:
        """Names holding ``pattern`` (Nova's ``LIKE %pattern%``), sorted. From 3 characters: the SINTER
        of the pattern's trigram sets, confirmed (O(the smallest set)); shorter: every name, no record."""
        if len(pattern) >= TRIGRAM:
            found = self._client.sinter([self._keys.host_trigram(g) for g in sorted(trigrams(pattern))])
        else:
            found = self._client.zrange(self._keys.hosts_by_service_id(), 0, -1)
        return sorted(n for n in found if pattern in n)

    def host_by_service_uuid(self, service_uuid: str) -> str | None:
        return self._client.hget(self._keys.hosts_by_service_uuid(), service_uuid)

    def rebuild_listing_indexes(self) -> int:
        """Fill ``hosts:totals``, the trigram sets, ``hosts:by_service_uuid`` and ``host:{name}:migrations``
        from the records when the totals are missing (a store written before they existed): O(fleet +
        migrations) once, O(1) to check; the totals go last, so a start cut short runs it again."""
        if self._client.exists(self._keys.host_totals()) or not self._client.scard(self._keys.host_index()):
            return 0
        hosts = self.list_hosts()
        usage = self.usage_by_host()
        total = dict.fromkeys(TOTAL_FIELDS, 0)
        for host in hosts:
            for field, value in statistics_share(host, usage.get(host.name, HostUsage())).items():
                total[field] += value
        self.rebuild_host_migration_index()  # type: ignore[attr-defined]
        pipe = self._multi()
        pipe.hset(self._keys.host_totals(), mapping=total)
        self._queue_name_index(pipe, hosts, add=True)
        pipe.execute()
        return len(hosts)

    def page_hosts(self, limit: int, after_service_id: int | None = None) -> list[tuple[Host, HostUsage]]:
        """One page of hosts with their usage, by service id, after ``after_service_id``: the page only."""
        if limit <= 0:
            return []
        low = "-inf" if after_service_id is None else f"({after_service_id}"
        names = self._client.zrangebyscore(self._keys.hosts_by_service_id(), low, "+inf", start=0, num=limit)
        return sorted(self.hosts_with_usage(list(names)), key=lambda pair: pair[0].service_id)

    def host_by_hypervisor_id(self, *, service_id: int | None = None, uuid: str | None = None) -> str | None:
        """The host name behind a hypervisor id (a service id, or from 2.53 a uuid): one read."""
        if uuid is not None:
            return self._client.hget(self._keys.hosts_by_uuid(), uuid)
        found = self._client.zrangebyscore(self._keys.hosts_by_service_id(), service_id, service_id, start=0, num=1)
        return found[0] if found else None

    def rebuild_host_ids(self) -> int:
        """Fill the hypervisor lookups from the host records (a store written before they existed)."""
        if not self._client.scard(self._keys.host_index()) or self._client.exists(self._keys.hosts_by_service_id()):
            return 0
        hosts = self.list_hosts()
        pipe = self._multi()
        self._queue_host_ids(pipe, hosts)
        pipe.execute()
        return len(hosts)

    def get_host(self, name: str) -> Host | None:
        """One host, zone and liveness included: its record, the fleet's last report and its memberships
        in one round trip (two when it is in an aggregate), as ``hosts_with_usage`` reads them."""
        pipe = self._client.pipeline(transaction=False)
        pipe.get(self._keys.host(name))
        pipe.get(self._keys.fleet_reported_at())
        pipe.smembers(self._keys.host_aggregates(name))
        raw, reported_at, membership = pipe.execute()
        if raw is None:
            return None
        host = Host.model_validate_json(raw)
        found = zones_from_memberships(self._client, self._keys, {name: membership}).get(name)
        host.availability_zone = found[0] if found else self.default_availability_zone
        return self._with_liveness([host], reported_at=reported_at)[0]

    def get_host_unzoned(self, name: str) -> Host | None:
        """A host's record with its liveness but not its zone (``availability_zone`` as stored, not as
        its aggregates give it), in one round trip: for checks that read no zone (exists, service up)."""
        return self.get_hosts_unzoned([name]).get(name)

    def get_hosts_unzoned(self, names: list[str]) -> dict[str, Host]:
        """Several hosts as :meth:`get_host_unzoned` reads one, all in one round trip (a move's
        source and named destination); a name with no host is absent from the answer."""
        wanted = list(dict.fromkeys(names))
        *raws, reported_at = self._client.mget([*(self._keys.host(n) for n in wanted), self._keys.fleet_reported_at()])
        hosts = [Host.model_validate_json(raw) for raw in raws if raw is not None]
        return {host.name: host for host in self._with_liveness(hosts, reported_at=reported_at)}

    def get_hosts(self, names: list[str]) -> dict[str, Host]:
        """Just these hosts, zones included, in three round trips whatever their number or the fleet's."""
        wanted = sorted(set(names))
        return {h.name: h for h in self._zoned(self._load_many(Host, (self._keys.host(n) for n in wanted)))}

    def list_hosts(self) -> list[Host]:
        """Every host, zones and liveness included, by name: the records in one MGET, the zones from the
        aggregates' side; a fixed number of round trips and of commands beyond the aggregates'."""
        pipe = self._client.pipeline(transaction=False)
        pipe.smembers(self._keys.host_index())
        pipe.get(self._keys.fleet_reported_at())
        names, reported_at = pipe.execute()
        hosts = self._load_many(Host, (self._keys.host(n) for n in sorted(names)))
        zones = every_host_zone(self._client, self._keys)
        for host in hosts:
            found = zones.get(host.name)
            host.availability_zone = found[0] if found else self.default_availability_zone
        return self._with_liveness(hosts, reported_at=reported_at)

    def _as_read(self, hosts: list[Host]) -> list[Host]:
        return self._with_liveness(self._zoned(hosts))

    def _with_liveness(self, hosts: list[Host], *, reported_at: str | None | object = ...) -> list[Host]:
        """Nova's DB servicegroup driver, without a write per host.

        A host that is up (the fleet control has not taken it down) was last seen at the fleet's
        latest report; one taken down stopped reporting then (``last_seen_up`` kept when it went
        down). A host is ``reporting`` while that is at most ``service_down_time`` ago, and its
        ``updated_at`` is the later of its record's and its last report. Until some process has
        reported (no worker ever ran on this store), there is no heartbeat to age: a host is up
        exactly while the fleet control has it up.
        """
        if reported_at is ...:  # not read with the records by the caller
            reported_at = self._client.get(self._keys.fleet_reported_at())
        now = time.time()
        fresh: dict[str, bool] = {}  # most hosts share the one report: judge each time once
        for host in hosts:
            if host.up:
                host.last_seen_up = reported_at
            seen = host.last_seen_up
            if seen is None:
                host.reporting = host.up
                continue
            if seen not in fresh:
                fresh[seen] = abs(now - iso_to_epoch(seen)) <= self.service_down_time
            host.reporting = fresh[seen]
            host.updated_at = max(host.updated_at, seen)
        return hosts

    def _zoned(self, hosts: list[Host]) -> list[Host]:
        """Each host with the zone its aggregates give it (nova/availability_zones.py)."""
        zones = read_host_zones(self._client, self._keys, (h.name for h in hosts))
        for host in hosts:
            found = zones.get(host.name)
            host.availability_zone = found[0] if found else self.default_availability_zone
        return hosts

    def delete_host(self, name: str) -> None:
        """The service delete: the host, its usage and its aggregate memberships go in one MULTI.

        Refused (409) while any server holds a claim on it.
        """
        key, claims, aggregates = self._keys.host(name), self._keys.host_claims(name), self._keys.host_aggregates(name)

        def body(pipe: Any) -> None:
            if not pipe.exists(key):
                raise errors.NotFound(f"Compute host {name} could not be found.")
            if pipe.scard(claims):
                raise errors.Conflict(HOSTING_INSTANCES)
            member_of = pipe.smembers(aggregates)
            before, usage = self._watched_host_and_usage(pipe, name)
            plan = self._plan_placement(pipe, name, None)
            pipe.multi()
            pipe.delete(key, self._keys.host_usage(name), claims, aggregates, self._keys.host_migrations(name))
            self._queue_name_index(pipe, [Host(name=name)], add=False)
            self._queue_totals(pipe, statistics_change(before, None, usage))
            pipe.srem(self._keys.host_index(), name)
            pipe.zrem(self._keys.hosts_by_service_id(), name)
            pipe.hdel(self._keys.hosts_by_uuid(), Host(name=name).uuid)
            self._queue_placement(pipe, plan)
            for aggregate_id in member_of:
                pipe.zrem(self._keys.aggregate_hosts(aggregate_id), name)

        self._transaction(body, key, claims, aggregates)

    def update_host(self, name: str, **changes: Any) -> Host:
        key = self._keys.host(name)

        def body(pipe: Any) -> Host:
            host = self._load(Host, key, pipe)
            if host is None:
                raise errors.NotFound(f"Compute host {name} could not be found.")
            seen = {}
            if "up" in changes and changes["up"] != host.up:
                # Taken down, it stops reporting: its last report stays its last_seen_up.
                seen["last_seen_up"] = None if changes["up"] else pipe.get(self._keys.fleet_reported_at())
            updated = host.model_copy(update={**changes, **seen, "updated_at": utcnow()})
            usage = self._watched_usage(pipe, name)
            plan = self._plan_placement(pipe, name, updated, usage)
            pipe.multi()
            pipe.set(key, updated.model_dump_json(exclude=_NOT_STORED))
            self._queue_totals(pipe, statistics_change(host, updated, usage))
            self._queue_placement(pipe, plan)
            return updated

        return self._as_read([self._transaction(body, key)])[0]

    def get_usage(self, host: str) -> HostUsage:
        return read_usage(self._client, self._keys.host_usage(host))

    def usage_by_host(self) -> dict[str, HostUsage]:
        """Every host's usage, by name: the host index, then every usage hash in one pipelined round trip."""
        names = sorted(self._client.smembers(self._keys.host_index()))
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._keys.host_usage(name))
        return {name: HostUsage(**{f: int(v) for f, v in raw.items()})
                for name, raw in zip(names, pipe.execute() if names else [])}

    def claim_resources(self, host: str, instance_id: str, flavor: Flavor, seen: ClaimBasis | None = None) -> bool:
        """Atomically reserve the flavor on ``host`` for ``instance_id``; idempotent.

        Returns True when the claim exists afterwards, raises InsufficientResources
        when the host cannot fit it. A second call for the same pair changes nothing.
        One read, then one script that writes only while what was read is unchanged (else
        read again): two round trips; one when ``seen`` (what a search just read) still holds.
        Only a fresh read refuses: what ``seen`` lacks may have been given back since.
        """
        usage_key = self._keys.host_usage(host)
        claim_key = self._keys.claim(host, instance_id)
        host_key, placement_key = self._keys.host(host), self._keys.host_placement(host)
        while True:
            if seen is not None:  # the script answers 1 for a claim already there
                exists, raw_host, raw_usage, listed_in = False, seen.raw_host, seen.raw_usage, seen.listed_in
            else:
                reads = self._client.pipeline(transaction=False)
                reads.exists(claim_key)
                reads.get(host_key)
                reads.hgetall(usage_key)
                reads.get(placement_key)
                exists, raw_host, raw_usage, listed_in = reads.execute()
            if exists:
                return True
            if raw_host is None:
                raise errors.NotFound(f"Compute host {host} could not be found.")
            host_rec = Host.model_validate_json(raw_host)
            usage = HostUsage(**{f: int(v) for f, v in raw_usage.items()})
            short = capacity_shortfall(host_rec, usage, flavor)
            if short and seen is not None:
                seen = None
                continue
            if short:
                raise errors.InsufficientResources(f"Host {host} lacks {short} for the flavor {flavor.name}")
            score = ""
            if listed_in is not None:
                usage.memory_mb_used += flavor.ram
                score = repr(placement_score(host_rec, usage))
            if self._script(CLAIM)(
                    keys=self._claim_keys(host, instance_id, listed_in),
                    args=[raw_host, listed_in or "", score, instance_id, host, moves_totals(host_rec),
                          *hash_args({"vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.total_disk_gb}),
                          *hash_args(raw_usage)]):
                return True
            seen = None

    def release_claim(self, host: str, instance_id: str) -> bool:
        """Give back what :meth:`claim_resources` took; a no-op when there is no claim. Two round
        trips, as in :meth:`claim_resources`."""
        usage_key = self._keys.host_usage(host)
        claim_key = self._keys.claim(host, instance_id)
        host_key, placement_key = self._keys.host(host), self._keys.host_placement(host)
        while True:
            reads = self._client.pipeline(transaction=False)
            reads.hgetall(claim_key)
            reads.get(placement_key)
            reads.get(host_key)
            reads.hgetall(usage_key)
            claim, listed_in, raw_host, raw_usage = reads.execute()
            if not claim:
                return False
            host_rec = None if raw_host is None else Host.model_validate_json(raw_host)
            score = ""
            if listed_in is not None and host_rec is not None:
                usage = HostUsage(**{f: int(v) for f, v in raw_usage.items()})
                usage.memory_mb_used -= int(claim["ram"])
                score = repr(placement_score(host_rec, usage))
            if self._script(RELEASE_CLAIM)(
                    keys=self._claim_keys(host, instance_id, listed_in),
                    args=[raw_host or "", listed_in or "", score, instance_id, host, moves_totals(host_rec),
                          *hash_args(claim), *hash_args(raw_usage)]):
                return True

    def _claim_keys(self, host: str, instance_id: str, listed_in: str | None) -> list[str]:
        """The keys of CLAIM and RELEASE_CLAIM, in their order."""
        keys = [self._keys.claim(host, instance_id), self._keys.host(host), self._keys.host_usage(host),
                self._keys.host_placement(host), self._keys.host_claims(host), self._keys.instance_claims(instance_id),
                self._keys.host_totals()]
        if listed_in is not None:
            keys.append(self._keys.placement(listed_in))
        return keys

    def has_claim(self, host: str, instance_id: str) -> bool:
        return bool(self._client.exists(self._keys.claim(host, instance_id)))

    def claims_on_host(self, host: str) -> set[str]:
        return set(self._client.smembers(self._keys.host_claims(host)))

    def servers_claiming(self, hosts: list[str]) -> list[Instance]:
        """The server records holding a claim on any of ``hosts``: O(their servers), not O(servers)."""
        if not hosts:
            return []
        pipe = self._client.pipeline(transaction=False)
        for host in hosts:
            pipe.smembers(self._keys.host_claims(host))
        ids = sorted({i for found in pipe.execute() for i in found})
        return self._load_many(Instance, (self._keys.instance(i) for i in ids))

    def hosts_claimed_by(self, instance_id: str) -> set[str]:
        return set(self._client.smembers(self._keys.instance_claims(instance_id)))
