"""Compute hosts and their usage counters, with the placement index (compute/store/placement.py)
and the resource claims (compute/store/claims.py) that every host write keeps in step."""
from __future__ import annotations

import time
from typing import Any

from compute import errors
from compute.models import Host, HostUsage, utcnow
from compute.store.aggregates import (
    every_host_zone,
    read_host_zones,
    zones_from_memberships,
)
from compute.store.base import iso_to_epoch
from compute.store.claims import ClaimRecords
from compute.store.placement import PlacementRecords, read_usage

# A host's zone is decided by its aggregates, and whether it reports at each read: never stored with it.
_NOT_STORED = {"availability_zone", "reporting"}
HOSTING_INSTANCES = ("Unable to delete compute service that is hosting instances. "
                     "Migrate or delete the instances first.")

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


class HostRecords(PlacementRecords, ClaimRecords):
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
