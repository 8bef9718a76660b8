"""Host aggregates: their records, their member hosts and each host's aggregates, and the zone rule.

An aggregate's hosts are a sorted set beside its record (``aggregate:{id}:hosts``) and each host
lists its aggregates (``host:{name}:aggregates``); a membership is added or removed in both in
one MULTI. Every write WATCHes what its checks read (the aggregate, the names, the member hosts'
aggregates and those aggregates' records, the hosts' claims), so the AZ rules of
compute/aggregates.py hold however requests interleave: a host is never in two zones.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from compute import aggregates as rules
from compute.models import Aggregate, Host, utcnow
from compute.store.base import StoreBase
from compute.store.keys import Keys

_HOSTS_FIELD = {"hosts"}


def read_host_zones(client: Any, keys: Keys, names: Iterable[str]) -> dict[str, list[str]]:
    """Each host's zones, from the aggregates it is in (aggregate id order; usually one, or none)."""
    names = list(names)
    if not names:
        return {}
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.smembers(keys.host_aggregates(name))
    return zones_from_memberships(client, keys, dict(zip(names, pipe.execute())))


def zones_from_memberships(client: Any, keys: Keys, memberships: dict[str, Any]) -> dict[str, list[str]]:
    """Each host's zones from the aggregate ids it is in (one MGET of those aggregates, none if none)."""
    ids = sorted({int(i) for found in memberships.values() for i in found})
    if not ids:
        return {name: [] for name in memberships}
    zone_by_id: dict[int, str | None] = {}
    for aggregate_id, raw in zip(ids, client.mget([keys.aggregate(i) for i in ids])):
        zone_by_id[aggregate_id] = None if raw is None else Aggregate.model_validate_json(raw).availability_zone
    zones: dict[str, list[str]] = {}
    for name, found in memberships.items():
        zones[name] = []
        for aggregate_id in sorted(int(i) for i in found):
            zone = zone_by_id.get(aggregate_id)
            if zone and zone not in zones[name]:
                zones[name].append(zone)
    return zones


def every_host_zone(client: Any, keys: Keys) -> dict[str, list[str]]:
    """Each host's zones as :func:`read_host_zones` gives them, read from the aggregates' side for a
    whole-fleet read: the aggregates, then the members of the zoned ones (O(aggregates + their members),
    two round trips, not a command per host). A host no zoned aggregate holds is absent."""
    ids = [int(i) for i in client.zrange(keys.aggregate_index(), 0, -1)]
    zoned = [(a.id, a.availability_zone) for a in (Aggregate.model_validate_json(raw)
             for raw in (client.mget([keys.aggregate(i) for i in ids]) if ids else []) if raw is not None)
             if a.availability_zone]
    if not zoned:
        return {}
    pipe = client.pipeline(transaction=False)
    for aggregate_id, _ in zoned:
        pipe.zrange(keys.aggregate_hosts(aggregate_id), 0, -1)
    zones: dict[str, list[str]] = {}
    for (_, zone), members in zip(zoned, pipe.execute()):
        for name in members:
            if zone not in zones.setdefault(name, []):
                zones[name].append(zone)
    return zones


class AggregateRecords(StoreBase):
    # ---- reads --------------------------------------------------------------------------------
    def get_aggregate(self, aggregate_id: int) -> Aggregate | None:
        aggregate = self._load(Aggregate, self._keys.aggregate(aggregate_id))
        if aggregate is not None:
            aggregate.hosts = list(self._client.zrange(self._keys.aggregate_hosts(aggregate_id), 0, -1))
        return aggregate

    def list_aggregates(self) -> list[Aggregate]:
        """In id order (Nova's creation order)."""
        ids = self._client.zrange(self._keys.aggregate_index(), 0, -1)
        found = self._load_many(Aggregate, (self._keys.aggregate(i) for i in ids))
        if not found:
            return []
        pipe = self._client.pipeline(transaction=False)
        for aggregate in found:
            pipe.zrange(self._keys.aggregate_hosts(aggregate.id), 0, -1)
        for aggregate, hosts in zip(found, pipe.execute()):
            aggregate.hosts = list(hosts)
        return found

    def aggregates_of_host(self, host: str) -> list[Aggregate]:
        ids = sorted(int(i) for i in self._client.smembers(self._keys.host_aggregates(host)))
        return [a for a in (self.get_aggregate(i) for i in ids) if a is not None]

    def aggregate_zones(self) -> set[str]:
        """The zones some aggregate names: the aggregates' records only, never their hosts."""
        ids = self._client.zrange(self._keys.aggregate_index(), 0, -1)
        return {a.availability_zone for a in self._load_many(Aggregate, (self._keys.aggregate(i) for i in ids))
                if a.availability_zone}

    # ---- writes -------------------------------------------------------------------------------
    def create_aggregate(self, name: str, availability_zone: str | None = None) -> Aggregate:
        names = self._keys.aggregate_names()

        def body(pipe: Any) -> Aggregate:
            if pipe.hexists(names, name):
                raise rules.AggregateNameExists(name)
            aggregate = Aggregate(id=int(self._client.incr(self._keys.aggregate_sequence())), name=name,
                                  metadata={rules.AZ_KEY: availability_zone} if availability_zone else {})
            pipe.multi()
            self._queue_record(pipe, aggregate)
            pipe.zadd(self._keys.aggregate_index(), {str(aggregate.id): aggregate.id})
            pipe.hset(names, name, aggregate.id)
            return aggregate

        return self._transaction(body, names)

    def update_aggregate(self, aggregate_id: int, updates: Mapping[str, str | None]) -> Aggregate:
        """PUT /os-aggregates/{id}: ``name`` and/or ``availability_zone``, checked, then written together.

        (Nova saves a new name before it checks the zone; here a refused zone changes nothing.)
        """
        def body(pipe: Any) -> Aggregate:
            aggregate = self._watched_aggregate(pipe, aggregate_id)
            old_name = aggregate.name
            new_name = updates.get("name")
            if new_name is not None and new_name != old_name:
                pipe.watch(self._keys.aggregate_names())
                owner = pipe.hget(self._keys.aggregate_names(), new_name)
                if owner is not None and int(owner) != aggregate.id:
                    raise rules.AggregateNameExists(new_name)
            zone_change = {rules.AZ_KEY: updates[rules.AZ_KEY]} if rules.AZ_KEY in updates else {}
            plans: list[Any] = []
            if zone_change:
                rules.check_zone_update(rules.UPDATE, zone_change, aggregate,
                                        self._watched_aggregates_of(pipe, aggregate.hosts),
                                        self._watched_servers_on(pipe, aggregate.hosts) > 0)
                changed = aggregate.model_copy(deep=True)
                changed.metadata.update({k: v for k, v in zone_change.items() if v})
                plans = self._plan_zones(pipe, aggregate.hosts, changed)
            pipe.multi()
            self._queue_plans(pipe, plans)
            if new_name is not None and new_name != old_name:
                pipe.hdel(self._keys.aggregate_names(), old_name)
                pipe.hset(self._keys.aggregate_names(), new_name, aggregate.id)
                aggregate.name = new_name
            aggregate.metadata.update({k: v for k, v in zone_change.items() if v})
            aggregate.updated_at = utcnow()
            self._queue_record(pipe, aggregate)
            return aggregate

        return self._transaction(body, self._keys.aggregate(aggregate_id))

    def set_aggregate_metadata(self, aggregate_id: int, metadata: Mapping[str, str | None]) -> Aggregate:
        """set_metadata: keys merged in, a null value deletes its key; a zone change is checked first."""
        def body(pipe: Any) -> Aggregate:
            aggregate = self._watched_aggregate(pipe, aggregate_id)
            zone_before = aggregate.availability_zone
            if rules.AZ_KEY in metadata:
                rules.check_zone_update(rules.UPDATE_META, metadata, aggregate,
                                        self._watched_aggregates_of(pipe, aggregate.hosts),
                                        self._watched_servers_on(pipe, aggregate.hosts) > 0)
            for key, value in metadata.items():
                if value is None:
                    aggregate.metadata.pop(key, None)
                else:
                    aggregate.metadata[key] = value
            aggregate.updated_at = utcnow()
            plans = (self._plan_zones(pipe, aggregate.hosts, aggregate)
                     if aggregate.availability_zone != zone_before else [])
            pipe.multi()
            self._queue_plans(pipe, plans)
            self._queue_record(pipe, aggregate)
            return aggregate

        return self._transaction(body, self._keys.aggregate(aggregate_id))

    def delete_aggregate(self, aggregate_id: int) -> None:
        def body(pipe: Any) -> None:
            aggregate = self._watched_aggregate(pipe, aggregate_id)
            if aggregate.hosts:
                raise rules.InvalidAggregateAction(rules.DELETE, aggregate.id, "Host aggregate is not empty")
            pipe.multi()
            pipe.delete(self._keys.aggregate(aggregate.id), self._keys.aggregate_hosts(aggregate.id))
            pipe.zrem(self._keys.aggregate_index(), str(aggregate.id))
            pipe.hdel(self._keys.aggregate_names(), aggregate.name)

        self._transaction(body, self._keys.aggregate(aggregate_id))

    def add_aggregate_host(self, aggregate_id: int, host: str) -> Aggregate:
        """add_host, in Nova's order: the host, the aggregate, the zone rules, then the membership."""
        def body(pipe: Any) -> Aggregate:
            self._watched_host(pipe, host)
            aggregate = self._watched_aggregate(pipe, aggregate_id)
            aggregates_of_host = self._watched_aggregates_of(pipe, [host])
            rules.check_zone_update(rules.ADD, aggregate.metadata, aggregate, aggregates_of_host, None)
            rules.check_host_added(aggregate, aggregates_of_host, self._watched_servers_on(pipe, [host]))
            if host in aggregate.hosts:
                raise rules.AggregateHostExists(aggregate.id, host)
            plans = self._plan_zones(pipe, [host], aggregate, also=aggregates_of_host)
            pipe.multi()
            self._queue_plans(pipe, plans)
            pipe.zadd(self._keys.aggregate_hosts(aggregate.id), {host: time.time()})
            pipe.sadd(self._keys.host_aggregates(host), str(aggregate.id))
            aggregate.hosts.append(host)
            return aggregate

        return self._transaction(body, self._keys.aggregate(aggregate_id))

    def remove_aggregate_host(self, aggregate_id: int, host: str) -> Aggregate:
        def body(pipe: Any) -> Aggregate:
            self._watched_host(pipe, host)
            aggregate = self._watched_aggregate(pipe, aggregate_id)
            aggregates_of_host = self._watched_aggregates_of(pipe, [host])
            rules.check_host_removed(aggregate, aggregates_of_host, self._watched_servers_on(pipe, [host]))
            if host not in aggregate.hosts:
                raise rules.AggregateHostNotFound(aggregate.id, host)
            plans = self._plan_zones(pipe, [host], None, also=[a for a in aggregates_of_host if a.id != aggregate.id])
            pipe.multi()
            self._queue_plans(pipe, plans)
            pipe.zrem(self._keys.aggregate_hosts(aggregate.id), host)
            pipe.srem(self._keys.host_aggregates(host), str(aggregate.id))
            aggregate.hosts.remove(host)
            return aggregate

        return self._transaction(body, self._keys.aggregate(aggregate_id))

    # ---- the placement index follows every zone change, in the same MULTI ------------------------------
    def _plan_zones(self, pipe: Any, hosts: Iterable[str], changed: Aggregate | None,
                    also: Iterable[Aggregate] | None = None) -> list[Any]:
        """Each host's placement entry once ``changed`` (None: nothing new) is as given.

        ``also``: the host's other aggregates, when the caller has them (one host); otherwise each
        host's aggregates are read here (an aggregate's zone changing: O(its hosts), an admin call).
        """
        plans = []
        for host in hosts:
            if also is not None:
                others = [a for a in also if changed is None or a.id != changed.id]
            else:
                ids = {int(i) for i in pipe.smembers(self._keys.host_aggregates(host))}
                others = [a for a in (self._read_watched(pipe, i) for i in sorted(ids))
                          if a is not None and (changed is None or a.id != changed.id)]
            zones = rules.zones_of([*others, *([changed] if changed is not None else [])])
            record = self._load(Host, self._keys.host(host), pipe)
            plans.append(self._plan_placement(pipe, host, record, zone=zones[0] if zones  # type: ignore[attr-defined]
                                              else self.default_availability_zone))
        return plans

    def _queue_plans(self, pipe: Any, plans: list[Any]) -> None:
        for plan in plans:
            self._queue_placement(pipe, plan)  # type: ignore[attr-defined]

    # ---- inside a transaction: watch a key, then read it ----------------------------------------------
    def _queue_record(self, pipe: Any, aggregate: Aggregate) -> None:
        pipe.set(self._keys.aggregate(aggregate.id), aggregate.model_dump_json(exclude=_HOSTS_FIELD))

    def _watched_aggregate(self, pipe: Any, aggregate_id: int) -> Aggregate:
        found = self._read_watched(pipe, aggregate_id)
        if found is None:
            raise rules.AggregateNotFound(aggregate_id)
        return found

    def _read_watched(self, pipe: Any, aggregate_id: int) -> Aggregate | None:
        record, hosts = self._keys.aggregate(aggregate_id), self._keys.aggregate_hosts(aggregate_id)
        pipe.watch(record, hosts)
        aggregate = self._load(Aggregate, record, pipe)
        if aggregate is not None:
            aggregate.hosts = list(pipe.zrange(hosts, 0, -1))
        return aggregate

    def _watched_aggregates_of(self, pipe: Any, hosts: Iterable[str]) -> list[Aggregate]:
        ids: set[int] = set()
        for host in hosts:
            key = self._keys.host_aggregates(host)
            pipe.watch(key)
            ids |= {int(i) for i in pipe.smembers(key)}
        return [a for a in (self._read_watched(pipe, i) for i in sorted(ids)) if a is not None]

    def _watched_servers_on(self, pipe: Any, hosts: Iterable[str]) -> int:
        """How many servers hold a claim on ``hosts`` (one server on two hosts counts twice)."""
        total = 0
        for host in hosts:
            key = self._keys.host_claims(host)
            pipe.watch(key)
            total += int(pipe.scard(key))
        return total

    def _watched_host(self, pipe: Any, host: str) -> None:
        key = self._keys.host(host)
        pipe.watch(key)
        if not pipe.exists(key):
            raise rules.ComputeHostNotFound(host)
