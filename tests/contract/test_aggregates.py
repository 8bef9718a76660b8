"""Aggregates in the store: records and both membership sets, hosts' zones from them, and Nova's
zone rules held under races. Every case runs on fakeredis and on the real Redis."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from compute import aggregates as rules
from compute import errors
from compute.models import Aggregate
from compute.store import Store
from tests.contract.conftest import SMALL, Backend, small_host
from tests.support.concurrency import at_once


@pytest.fixture
def hosts(store: Store) -> Store:
    for name in ("compute-1", "compute-2", "compute-3"):
        store.put_host(small_host(name))
    return store


def zone_of(store: Store, host: str) -> str:
    found = store.get_host(host)
    assert found is not None
    return found.availability_zone


# ---- records -----------------------------------------------------------------------------------
def test_create__ids_count_up_and_the_zone_is_a_metadata_key(store: Store) -> None:
    first = store.create_aggregate("agg-a", "az1")
    second = store.create_aggregate("agg-b")
    assert (first.id, second.id) == (1, 2)
    assert first.metadata == {"availability_zone": "az1"} and first.availability_zone == "az1"
    assert second.metadata == {} and second.availability_zone is None
    assert first.updated_at is None and first.hosts == []
    assert store.get_aggregate(1) == first
    assert [a.name for a in store.list_aggregates()] == ["agg-a", "agg-b"]
    assert store.get_aggregate(3) is None


def test_create__one_multi_and_names_are_unique(backend: Backend) -> None:
    store, client = backend.counting()
    store.create_aggregate("agg-a")
    assert sorted(client.direct) == ["incr", "transaction"]  # the id, and one WATCH/MULTI for the rest
    with pytest.raises(rules.AggregateNameExists, match="Aggregate agg-a already exists."):
        store.create_aggregate("agg-a", "az9")
    assert len(store.list_aggregates()) == 1


def test_update__renames_and_sets_the_zone_and_frees_the_old_name(store: Store) -> None:
    aggregate = store.create_aggregate("agg-a")
    store.create_aggregate("agg-b")
    with pytest.raises(rules.AggregateNameExists):
        store.update_aggregate(aggregate.id, {"name": "agg-b"})
    updated = store.update_aggregate(aggregate.id, {"name": "agg-c", "availability_zone": "az1"})
    assert (updated.name, updated.availability_zone) == ("agg-c", "az1")
    assert updated.updated_at is not None
    assert store.update_aggregate(aggregate.id, {"name": "agg-c"}).name == "agg-c"  # its own name again
    store.create_aggregate("agg-a")  # the old name is free
    with pytest.raises(rules.AggregateNotFound, match="Aggregate 99 could not be found."):
        store.update_aggregate(99, {"name": "x"})


def test_set_metadata__merges_and_a_null_deletes(store: Store) -> None:
    aggregate = store.create_aggregate("agg-a", "az1")
    store.set_aggregate_metadata(aggregate.id, {"ssd": "true", "gpu": "no"})
    updated = store.set_aggregate_metadata(aggregate.id, {"gpu": None, "missing": None})
    assert updated.metadata == {"availability_zone": "az1", "ssd": "true"}
    assert store.get_aggregate(aggregate.id).metadata == updated.metadata


def test_delete__refused_while_it_has_hosts_then_everything_goes(hosts: Store, backend: Backend) -> None:
    aggregate = hosts.create_aggregate("agg-a", "az1")
    hosts.add_aggregate_host(aggregate.id, "compute-1")
    with pytest.raises(rules.InvalidAggregateAction, match="Cannot remove host from aggregate 1. Reason: "
                                                           "Host aggregate is not empty."):
        hosts.delete_aggregate(aggregate.id)
    hosts.remove_aggregate_host(aggregate.id, "compute-1")
    hosts.delete_aggregate(aggregate.id)
    assert hosts.list_aggregates() == [] and hosts.get_aggregate(aggregate.id) is None
    hosts.create_aggregate("agg-a")  # its name is free again
    leftover = {k for k in backend.leftover_keys() if k.startswith("aggregate")}
    assert leftover == {"aggregates", "aggregate_names", "aggregate:2"}


# ---- membership and the zones it gives ------------------------------------------------------------
def test_add_and_remove_host__both_sets_move_together(hosts: Store, backend: Backend) -> None:
    aggregate = hosts.create_aggregate("agg-a", "az1")
    store, client = backend.counting()
    added = store.add_aggregate_host(aggregate.id, "compute-2")
    assert client.direct == ["transaction"]  # both sets in one WATCH/MULTI, nothing outside it
    store.add_aggregate_host(aggregate.id, "compute-1")
    assert added.hosts == ["compute-2"]
    assert store.get_aggregate(aggregate.id).hosts == ["compute-2", "compute-1"]  # in the order added
    assert [a.id for a in store.aggregates_of_host("compute-1")] == [aggregate.id]
    with pytest.raises(rules.AggregateHostExists, match="Aggregate 1 already has host compute-1."):
        store.add_aggregate_host(aggregate.id, "compute-1")
    assert store.remove_aggregate_host(aggregate.id, "compute-2").hosts == ["compute-1"]
    assert store.aggregates_of_host("compute-2") == []
    with pytest.raises(rules.AggregateHostNotFound, match="Aggregate 1 has no host compute-2."):
        store.remove_aggregate_host(aggregate.id, "compute-2")


def test_add_host__unknown_host_or_aggregate(hosts: Store) -> None:
    aggregate = hosts.create_aggregate("agg-a")
    with pytest.raises(rules.ComputeHostNotFound, match="Compute host nope could not be found."):
        hosts.add_aggregate_host(aggregate.id, "nope")
    with pytest.raises(rules.AggregateNotFound):
        hosts.add_aggregate_host(7, "compute-1")


def test_zones__a_host_is_in_its_aggregates_zone_else_the_default(hosts: Store) -> None:
    plain = hosts.create_aggregate("plain")
    zoned = hosts.create_aggregate("zoned", "az1")
    hosts.add_aggregate_host(plain.id, "compute-1")
    hosts.add_aggregate_host(zoned.id, "compute-2")
    assert {h.name: h.availability_zone for h in hosts.list_hosts()} == {
        "compute-1": "nova", "compute-2": "az1", "compute-3": "nova"}
    assert zone_of(hosts, "compute-2") == "az1"
    hosts.default_availability_zone = "elsewhere"
    assert zone_of(hosts, "compute-1") == "elsewhere"
    assert hosts.update_host("compute-2", up=False).availability_zone == "az1"


def test_zones__never_stored_with_the_host(hosts: Store) -> None:
    zoned = hosts.create_aggregate("zoned", "az1")
    hosts.add_aggregate_host(zoned.id, "compute-1")
    hosts.update_host("compute-1", enabled=False)
    hosts.remove_aggregate_host(zoned.id, "compute-1")
    assert zone_of(hosts, "compute-1") == "nova"
    hosts.put_host(small_host("compute-4").model_copy(update={"availability_zone": "az7"}))
    assert zone_of(hosts, "compute-4") == "nova"


# ---- Nova's zone rules -------------------------------------------------------------------------
def test_rule__a_host_cannot_be_in_two_zones(hosts: Store) -> None:
    az1, az2, plain = (hosts.create_aggregate("a1", "az1"), hosts.create_aggregate("a2", "az2"),
                       hosts.create_aggregate("plain"))
    hosts.add_aggregate_host(az1.id, "compute-1")
    with pytest.raises(rules.InvalidAggregateAction) as refused:
        hosts.add_aggregate_host(az2.id, "compute-1")
    assert refused.value.message == ("Cannot add host to aggregate 2. Reason: One or more hosts already in "
                                     "availability zone(s) ['az1'].")
    hosts.add_aggregate_host(plain.id, "compute-1")  # no zone: no conflict
    with pytest.raises(rules.InvalidAggregateAction, match=r"Cannot update aggregate 3\. Reason: One or more hosts "
                                                           r"already in availability zone\(s\) \['az1'\]"):
        hosts.update_aggregate(plain.id, {"availability_zone": "az2"})
    with pytest.raises(rules.InvalidAggregateAction, match="Cannot update metadata of aggregate 3"):
        hosts.set_aggregate_metadata(plain.id, {"availability_zone": "az2"})
    hosts.set_aggregate_metadata(plain.id, {"availability_zone": "az1"})  # the same zone is fine
    assert zone_of(hosts, "compute-1") == "az1"


def test_rule__no_empty_zone(hosts: Store) -> None:
    aggregate = hosts.create_aggregate("agg-a", "az1")
    for change in ({"availability_zone": None}, {"availability_zone": ""}):
        with pytest.raises(rules.InvalidAggregateAction, match="Aggregate agg-a does not support empty named "
                                                               "availability zone"):
            hosts.set_aggregate_metadata(aggregate.id, change)
    assert hosts.get_aggregate(aggregate.id).availability_zone == "az1"


def test_rule__hosts_with_servers_keep_their_zone(hosts: Store) -> None:
    hosts.claim_resources("compute-1", "vm-1", SMALL)
    zoned = hosts.create_aggregate("zoned", "az1")
    with pytest.raises(rules.InvalidAggregateAction) as refused:
        hosts.add_aggregate_host(zoned.id, "compute-1")
    assert refused.value.message.startswith(
        "Cannot add host to aggregate 1. Reason: The host cannot be added to the aggregate as the availability "
        "zone of the host would change from 'None' to 'az1' but the host already has 1 instance(s).")
    plain = hosts.create_aggregate("plain")
    hosts.add_aggregate_host(plain.id, "compute-1")
    with pytest.raises(rules.InvalidAggregateAction, match="One or more hosts contain instances in this zone"):
        hosts.update_aggregate(plain.id, {"availability_zone": "az2"})
    hosts.release_claim("compute-1", "vm-1")
    hosts.add_aggregate_host(zoned.id, "compute-1")
    hosts.claim_resources("compute-1", "vm-1", SMALL)
    with pytest.raises(rules.InvalidAggregateAction) as refused:
        hosts.remove_aggregate_host(zoned.id, "compute-1")
    assert refused.value.message.startswith(
        "Cannot remove host from aggregate 1. Reason: The host cannot be removed from the aggregate as the "
        "availability zone of the host would change from 'az1' to 'None' but the host already has 1 instance(s).")
    hosts.update_aggregate(zoned.id, {"availability_zone": "az1"})  # unchanged zone: allowed


def test_delete_host__refused_with_claims_then_leaves_no_membership(hosts: Store) -> None:
    aggregate = hosts.create_aggregate("agg-a", "az1")
    hosts.add_aggregate_host(aggregate.id, "compute-1")
    hosts.claim_resources("compute-1", "vm-1", SMALL)
    with pytest.raises(errors.Conflict, match="hosting instances"):
        hosts.delete_host("compute-1")
    hosts.release_claim("compute-1", "vm-1")
    hosts.delete_host("compute-1")
    assert hosts.get_host("compute-1") is None
    assert [h.name for h in hosts.list_hosts()] == ["compute-2", "compute-3"]
    assert hosts.get_aggregate(aggregate.id).hosts == []
    with pytest.raises(errors.NotFound):
        hosts.delete_host("compute-1")


# ---- races ----------------------------------------------------------------------------------------
def race(monkeypatch: pytest.MonkeyPatch, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads that all pass their first zone check before any of them writes."""
    first_check = threading.Barrier(len(calls), timeout=20)
    seen = threading.local()
    real = rules.check_zone_update

    def check_then_wait(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        if not getattr(seen, "waited", False):
            seen.waited = True
            first_check.wait()

    monkeypatch.setattr(rules, "check_zone_update", check_then_wait)
    return at_once(len(calls), lambda index: calls[index]())


def test_race__one_host_added_to_two_zones_at_once_lands_in_one(hosts: Store,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    az1, az2 = hosts.create_aggregate("a1", "az1"), hosts.create_aggregate("a2", "az2")
    results = race(monkeypatch, [lambda: hosts.add_aggregate_host(az1.id, "compute-1"),
                                 lambda: hosts.add_aggregate_host(az2.id, "compute-1")])
    won = [r for r in results if isinstance(r, Aggregate)]
    lost = [r for r in results if isinstance(r, rules.InvalidAggregateAction)]
    assert (len(won), len(lost)) == (1, 1), results
    assert [a.id for a in hosts.aggregates_of_host("compute-1")] == [won[0].id]


def test_race__zoning_an_aggregate_while_its_host_joins_another_zone(hosts: Store,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    plain, az2 = hosts.create_aggregate("plain"), hosts.create_aggregate("a2", "az2")
    hosts.add_aggregate_host(plain.id, "compute-1")
    results = race(monkeypatch, [lambda: hosts.update_aggregate(plain.id, {"availability_zone": "az1"}),
                                 lambda: hosts.add_aggregate_host(az2.id, "compute-1")])
    assert sum(isinstance(r, rules.InvalidAggregateAction) for r in results) == 1, results
    zones = rules.zones_of(hosts.aggregates_of_host("compute-1"))
    assert len(zones) == 1


def test_get_host__one_pipeline_and_one_mget_of_its_aggregates_as_hosts_with_usage_reads_it(
        backend: Backend) -> None:
    """A flow reads a move's hosts through get_host: the record, the last report and the memberships
    go in one pipeline; only a host in an aggregate costs one more read (their records)."""
    setup = backend.store()
    for name in ("compute-1", "compute-2"):
        setup.put_host(small_host(name))
    aggregate = setup.create_aggregate("agg-a", "az1")
    setup.add_aggregate_host(aggregate.id, "compute-1")
    store, client = backend.counting()
    for name, zone, direct in (("compute-1", "az1", ["mget"]), ("compute-2", store.default_availability_zone, [])):
        client.direct.clear()
        found = store.get_host(name)
        assert client.direct == direct and client.multis == 0
        assert found is not None and found.availability_zone == zone
        assert found == store.hosts_with_usage([name])[0][0]
    client.direct.clear()
    assert store.get_host("compute-9") is None and client.direct == []
