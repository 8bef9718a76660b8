"""Seeding the simulated fleet (fleet/loader.py): the whole fleet file applied in one transaction.

The fleet file's digest is stored with what it wrote, in the same MULTI, under WATCH of the
digest, the host index and every record the change reads: a crash midway leaves the old fleet
or the new one, never a part; processes starting together apply it once (the others find the
digest and change nothing). A file whose digest differs from the stored one is applied as a
change (hosts added, updated, removed; flavors replaced; images and aggregates added), or
refused as a whole with the reason (:class:`FleetChangeRefused`), never ignored.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from compute import aggregates as rules
from compute.models import Aggregate, Flavor, Host, HostUsage, Image
from compute.store.base import StoreBase, iso_to_epoch
from compute.store.hosts import _NOT_STORED, TOTAL_FIELDS, statistics_change
from compute.store.placement import placement_score, schedulable

# What the running fleet decides about a host (the fleet control, os-services): a changed file
# does not reset it unless it names the field.
RUNTIME_FIELDS = ("enabled", "up", "disabled_reason", "forced_down", "last_seen_up", "service_id",
                  "started_at", "updated_at")


class FleetChangeRefused(Exception):
    """The fleet file cannot be applied as it is; nothing was written."""


@dataclass
class FleetAggregate:
    name: str
    availability_zone: str | None = None
    hosts: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class FleetFile:
    """A fleet file read: host rows as written (their fields), and the rest as records."""

    digest: str
    hosts: list[dict[str, Any]]
    aggregates: list[FleetAggregate]
    flavors: list[Flavor]
    images: list[Image]
    durations: dict[str, float]


@dataclass
class FleetApplied:
    digest: str
    changed: bool
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    aggregates_created: list[str] = field(default_factory=list)


class _PlacementBatch:
    """The writes for many hosts, gathered to be queued as a few bulk commands."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.names: list[str] = []
        self.hosts: list[Host] = []
        self.scores: dict[str, dict[str, float]] = {}
        self.leaving: dict[str, list[str]] = {}
        self.listed: dict[str, str] = {}
        self.unlisted: list[str] = []

    def place(self, host: Host, usage: HostUsage, listed_in: str | None, zone: str) -> None:
        name = host.name
        self.names.append(name)
        self.hosts.append(host)
        if listed_in is not None and (listed_in != zone or not schedulable(host)):
            self.leaving.setdefault(listed_in, []).append(name)
        if schedulable(host):
            self.scores.setdefault(zone, {})[name] = placement_score(host, usage)
            self.listed[name] = zone
        else:
            self.unlisted.append(name)


def _mget(client: Any, keys: list[str]) -> list[Any]:
    return client.mget(keys) if keys else []


class FleetSeedRecords(StoreBase):
    def fleet_digest(self) -> str | None:
        return self._client.get(self._keys.fleet_digest())

    def rebuild_missing_indexes(self) -> dict[str, int]:
        """The indexes a store written before they existed lacks, rebuilt from the records (each check
        O(1); a rebuild O(its records), once). Returns how many records each rebuild indexed."""
        k, done = self._keys, {}
        if self._client.scard(k.host_index()) and not self._client.exists(k.placement_zones(),
                                                                          k.unschedulable_hosts()):
            done["placement"] = self.rebuild_placement_index()  # type: ignore[attr-defined]
        done["hypervisor ids"] = self.rebuild_host_ids()  # type: ignore[attr-defined]
        done["host totals and names"] = self.rebuild_listing_indexes()  # type: ignore[attr-defined]
        done["identities"] = self.rebuild_identities()
        done["image listing"] = self.rebuild_image_listing()  # type: ignore[attr-defined]
        done["instances"] = self.rebuild_instance_indexes()  # type: ignore[attr-defined]
        done["servers by host"] = self.rebuild_host_instance_index()  # type: ignore[attr-defined]
        done["servers by status"] = self.rebuild_status_counts()  # type: ignore[attr-defined]
        done["migrations"] = self.rebuild_migration_indexes()  # type: ignore[attr-defined]
        return {name: count for name, count in done.items() if count}

    def apply_fleet(self, fleet: FleetFile) -> FleetApplied:
        """Make the store hold ``fleet``; a no-op when its digest is the stored one."""
        return self._transaction(lambda pipe: self._apply(pipe, fleet), self._keys.fleet_digest(),
                                 self._keys.host_index(), self._keys.aggregate_names(),
                                 self._keys.aggregate_sequence(), self._keys.flavor_index())

    def _apply(self, pipe: Any, fleet: FleetFile) -> FleetApplied:
        if pipe.get(self._keys.fleet_digest()) == fleet.digest:
            pipe.multi()
            return FleetApplied(fleet.digest, changed=False)
        k = self._keys
        result = FleetApplied(fleet.digest, changed=True)
        existing = set(pipe.smembers(k.host_index()))
        wanted = [row["name"] for row in fleet.hosts]
        if len(set(wanted)) != len(wanted):
            raise FleetChangeRefused("the fleet file names a host twice")
        kept = [n for n in wanted if n in existing]
        removed = sorted(existing - set(wanted))
        touched = kept + removed
        if touched:  # every record of an existing host the change reads
            pipe.watch(*[key for n in touched for key in (k.host(n), k.host_usage(n), k.host_claims(n),
                                                         k.host_aggregates(n), k.host_placement(n))])
        reads = self._client.pipeline(transaction=False)
        for name in touched:
            reads.get(k.host(name))
            reads.hgetall(k.host_usage(name))
            reads.scard(k.host_claims(name))
            reads.smembers(k.host_aggregates(name))
            reads.get(k.host_placement(name))
        raw = reads.execute()
        state = {name: raw[i * 5:i * 5 + 5] for i, name in enumerate(touched)}
        holding = sorted(n for n in removed if state[n][2])
        if holding:
            raise FleetChangeRefused(
                f"the fleet file no longer lists {', '.join(holding)}, which hold(s) servers' claims: migrate or "
                "delete those servers first, or put the host(s) back in the file")

        # ---- aggregates: the existing ones by name, and the ones the file adds -------------------
        names = pipe.hgetall(k.aggregate_names())
        by_id: dict[int, Aggregate] = {}
        for aggregate_id, raw_aggregate in zip(sorted(int(i) for i in names.values()),
                                               _mget(pipe, [k.aggregate(i) for i in sorted(int(i) for i in
                                                                                         names.values())])):
            if raw_aggregate is not None:
                by_id[aggregate_id] = Aggregate.model_validate_json(raw_aggregate)
        by_name = {a.name: a for a in by_id.values()}
        next_id = int(pipe.get(k.aggregate_sequence()) or 0)
        memberships = {name: {int(i) for i in state[name][3]} for name in kept}
        memberships.update({row["name"]: set() for row in fleet.hosts if row["name"] not in existing})
        new_members: list[tuple[int, str]] = []
        created: list[Aggregate] = []
        metadata_changes: list[Aggregate] = []
        for spec in fleet.aggregates:
            aggregate = by_name.get(spec.name)
            if aggregate is None:
                next_id += 1
                aggregate = Aggregate(id=next_id, name=spec.name,
                                      metadata={rules.AZ_KEY: spec.availability_zone} if spec.availability_zone else {})
                aggregate.metadata.update(spec.metadata)
                by_name[spec.name] = by_id[next_id] = aggregate
                created.append(aggregate)
            elif spec.availability_zone is not None and aggregate.availability_zone != spec.availability_zone:
                raise FleetChangeRefused(
                    f"the fleet file gives aggregate {spec.name} the zone {spec.availability_zone}, the store has "
                    f"{aggregate.availability_zone}: change it through os-aggregates, not the fleet file")
            elif any(aggregate.metadata.get(key) != value for key, value in spec.metadata.items()):
                aggregate.metadata.update(spec.metadata)
                metadata_changes.append(aggregate)
            for host in spec.hosts:
                if host not in memberships:
                    raise FleetChangeRefused(f"aggregate {spec.name} names {host}, which is not a host of the fleet")
                if aggregate.id not in memberships[host]:
                    memberships[host].add(aggregate.id)
                    new_members.append((aggregate.id, host))

        # ---- each host's record and zone after the change ---------------------------------------
        zone_of: dict[str, str] = {}
        for name, ids in memberships.items():
            zones = rules.zones_of(by_id[i] for i in ids if i in by_id)
            if len(zones) > 1:
                raise FleetChangeRefused(f"host {name} would be in more than one zone: {zones}")
            zone_of[name] = zones[0] if zones else self.default_availability_zone
        last_service_id = 0
        records: dict[str, Host] = {}
        for name in kept:
            record = Host.model_validate_json(state[name][0]) if state[name][0] else None
            if record is not None:
                records[name] = record
                last_service_id = max(last_service_id, record.service_id)
        joined = {host for _, host in new_members}
        old_flavors = set(pipe.smembers(k.flavor_index()))
        hosts: list[tuple[Host, bool]] = []  # (record to write, is new)
        for index, row in enumerate(fleet.hosts, start=1):
            before = records.get(row["name"])
            if before is None:
                fresh = Host(**{"service_id": index if not existing else last_service_id + index, **row})
                hosts.append((fresh, True))
                continue
            kept_fields = {f: getattr(before, f) for f in RUNTIME_FIELDS if f not in row}
            after = Host(**{**row, **kept_fields})
            before_zone = state[row["name"]][4]
            zone_moves = schedulable(before) and before_zone is not None and before_zone != zone_of[row["name"]]
            if zone_moves and state[row["name"]][2]:
                raise FleetChangeRefused(f"host {row['name']} holds servers' claims and would move from zone "
                                         f"{before_zone} to {zone_of[row['name']]}")
            if after.model_dump(exclude=_NOT_STORED) != before.model_dump(exclude=_NOT_STORED) or zone_moves or \
                    row["name"] in joined:
                hosts.append((after, False))

        # ---- every write, in one MULTI ----------------------------------------------------------
        pipe.multi()
        batch = _PlacementBatch()
        for host, is_new in hosts:
            name = host.name
            batch.records[k.host(name)] = host.model_dump_json(exclude=_NOT_STORED)
            listed_in = None if is_new else state[name][4]
            usage = HostUsage() if is_new else HostUsage(**{f: int(v) for f, v in state[name][1].items()})
            batch.place(host, usage, listed_in, zone_of[name])
            (result.added if is_new else result.updated).append(name)
        self._queue_batch(pipe, batch)
        self._queue_listing_changes(pipe, hosts, records, state, removed)
        for name in removed:
            listed_in = state[name][4]
            if listed_in is not None:
                pipe.zrem(k.placement(listed_in), name)
            pipe.delete(k.host(name), k.host_usage(name), k.host_claims(name), k.host_aggregates(name),
                        k.host_placement(name))
            pipe.srem(k.host_index(), name)
            pipe.srem(k.unschedulable_hosts(), name)
            pipe.zrem(k.hosts_by_service_id(), name)
            pipe.hdel(k.hosts_by_uuid(), Host(name=name).uuid)
            for aggregate_id in state[name][3]:
                pipe.zrem(k.aggregate_hosts(aggregate_id), name)
            result.removed.append(name)
        for aggregate in created + metadata_changes:
            pipe.set(k.aggregate(aggregate.id), aggregate.model_dump_json(exclude={"hosts"}))
        for aggregate in created:
            pipe.zadd(k.aggregate_index(), {str(aggregate.id): aggregate.id})
            pipe.hset(k.aggregate_names(), aggregate.name, aggregate.id)
            result.aggregates_created.append(aggregate.name)
        if created:
            pipe.set(k.aggregate_sequence(), next_id)
        added_at = time.time()
        for order, (aggregate_id, host) in enumerate(new_members):
            pipe.zadd(k.aggregate_hosts(aggregate_id), {host: added_at + order * 1e-6})
            pipe.sadd(k.host_aggregates(host), str(aggregate_id))
        self._queue_catalog(pipe, fleet.flavors, fleet.images, old_flavors)
        pipe.delete(k.fleet_durations())
        if fleet.durations:
            pipe.hset(k.fleet_durations(), mapping=fleet.durations)
        pipe.set(k.fleet_digest(), fleet.digest)
        pipe.set(k.fleet_seeded(), "1")
        return result

    def _queue_listing_changes(self, pipe: Any, written: list[tuple[Host, bool]], before: dict[str, Host],
                               state: dict[str, list[Any]], removed: list[str]) -> None:
        """``hosts:totals`` and the name indexes (compute/store/hosts.py) follow the hosts the file adds,
        changes and drops, in the same MULTI; ``state``: each existing host's record and usage as read."""
        def usage_of(name: str) -> HostUsage:
            return HostUsage(**{f: int(v) for f, v in state[name][1].items()}) if name in state else HostUsage()

        change = dict.fromkeys(TOTAL_FIELDS, 0)
        moves = [(before.get(h.name), h, usage_of(h.name)) for h, _ in written]
        moves += [(Host.model_validate_json(state[n][0]) if state[n][0] else None, None, usage_of(n)) for n in removed]
        for old, new, usage in moves:
            for name, value in statistics_change(old, new, usage).items():
                change[name] += value
        self._queue_totals(pipe, change)  # type: ignore[attr-defined]
        self._queue_name_index(pipe, [h for h, is_new in written if is_new], add=True)  # type: ignore[attr-defined]
        self._queue_name_index(pipe, [Host(name=n) for n in removed], add=False)  # type: ignore[attr-defined]
        if removed:
            pipe.delete(*[self._keys.host_migrations(n) for n in removed])

    def _queue_batch(self, pipe: Any, batch: _PlacementBatch) -> None:
        """A few bulk commands for any number of hosts (MSET, one ZADD per zone, ...): a 10,000-host
        MULTI stays tens of commands beyond the records."""
        k = self._keys
        if not batch.records:
            return
        pipe.mset(batch.records)
        pipe.sadd(k.host_index(), *batch.names)
        self._queue_host_ids(pipe, batch.hosts)  # type: ignore[attr-defined]
        for zone, names in batch.leaving.items():
            pipe.zrem(k.placement(zone), *names)
        for zone, scores in batch.scores.items():
            pipe.zadd(k.placement(zone), scores)
        if batch.scores:
            pipe.sadd(k.placement_zones(), *batch.scores)
        if batch.listed:
            pipe.mset({k.host_placement(n): zone for n, zone in batch.listed.items()})
            pipe.srem(k.unschedulable_hosts(), *batch.listed)
        if batch.unlisted:
            pipe.delete(*[k.host_placement(n) for n in batch.unlisted])
            pipe.sadd(k.unschedulable_hosts(), *batch.unlisted)

    def _queue_catalog(self, pipe: Any, flavors: Iterable[Flavor], images: Iterable[Image],
                       old_flavors: set[str]) -> None:
        """Flavors become the file's (a flavor the file no longer lists goes: servers keep a copy of
        theirs); images are added or updated, never removed (snapshots and uploads live there too)."""
        k = self._keys
        flavors = list(flavors)
        for gone in sorted(old_flavors - {f.id for f in flavors}):
            pipe.delete(k.flavor(gone))
            pipe.srem(k.flavor_index(), gone)
        for flavor in flavors:
            pipe.set(k.flavor(flavor.id), flavor.model_dump_json())
            pipe.sadd(k.flavor_index(), flavor.id)
        for image in images:
            pipe.set(k.image(image.id), image.model_dump_json())
            pipe.zadd(k.image_index(), {image.id: iso_to_epoch(image.created_at)})
            self._queue_image_listing(pipe, image)  # type: ignore[attr-defined]

