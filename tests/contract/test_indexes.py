"""The indexes that let a list read only its page and placement only its top hosts (issue 12).

Servers per project and for every project, actions per server, migrations per project and in all;
paging by marker, filters applied while reading, and every write keeping them right: a delete
takes a server out of the live lists, a claim and a release move a host in the candidate order,
a disable or a zone change moves it out of or between the zones' candidate sets.
"""
from __future__ import annotations

import pytest

from compute.models import (
    Aggregate,
    Flavor,
    Instance,
    InstanceAction,
    Migration,
    new_request_id,
)
from compute.store import MarkerNotFound, Store
from tests.contract.conftest import SMALL, Backend, action_for, small_host
from tests.support.concurrency import at_once, raised


def servers(store: Store, count: int, project: str = "demo") -> list[Instance]:
    made = []
    for index in range(count):
        inst = Instance(name=f"vm-{index}", project_id=project, user_id="u", flavor=SMALL)
        action, run = action_for(inst)
        store.create_instance(inst, action, run, due_in=30)
        made.append(inst)
    return made


# ---- servers --------------------------------------------------------------------------------------
def test_servers__page_by_marker_newest_first_per_project_and_for_all(store: Store) -> None:
    mine = servers(store, 5)
    theirs = servers(store, 2, project="other")
    ids = [i.id for i in reversed(mine)]
    assert [i.id for i in store.page_instances(2, project_id="demo")] == ids[:2]
    assert [i.id for i in store.page_instances(2, project_id="demo", marker=ids[1])] == ids[2:4]
    assert [i.id for i in store.page_instances(10, project_id="demo", marker=ids[3])] == ids[4:]
    assert [i.id for i in store.page_instances(3)] == [theirs[1].id, theirs[0].id, ids[0]]
    assert store.page_instances(0, project_id="demo") == []
    with pytest.raises(MarkerNotFound):
        store.page_instances(2, project_id="demo", marker=theirs[0].id)  # another project's server
    odd = store.page_instances(10, project_id="demo", keep=lambda i: i.name in ("vm-1", "vm-3"))
    assert [i.name for i in odd] == ["vm-3", "vm-1"]


def test_servers__a_delete_leaves_the_live_lists_and_shows_in_the_deleted_one(store: Store) -> None:
    first, second = servers(store, 2)

    def delete(inst: Instance) -> None:
        inst.deleted = True

    store.update_instance(first.id, delete, undoing=True)
    assert [i.id for i in store.page_instances(10, project_id="demo")] == [second.id]
    assert [i.id for i in store.page_instances(10)] == [second.id]
    assert [i.id for i in store.page_instances(10, deleted=True)] == [first.id]
    with pytest.raises(MarkerNotFound):
        store.page_instances(10, project_id="demo", marker=first.id)

    def restore(inst: Instance) -> None:
        inst.deleted = False

    store.update_instance(first.id, restore, undoing=True)
    assert [i.id for i in store.page_instances(10, project_id="demo")] == [second.id, first.id]
    store.purge_instance_record(second.id)
    assert [i.id for i in store.page_instances(10)] == [first.id]
    assert [i.id for i in store.page_instances(10, project_id="demo")] == [first.id]


def test_servers__indexes_missing_from_an_older_store_are_rebuilt(backend: Backend, store: Store) -> None:
    made = servers(store, 3)
    for key in (f"{backend.prefix}instances:live", f"{backend.prefix}project:demo:instances"):
        backend.client.delete(key)
    assert store.page_instances(10) == []
    assert store.rebuild_missing_indexes()["instances"] == 3
    assert [i.id for i in store.page_instances(10, project_id="demo")] == [i.id for i in reversed(made)]
    assert store.rebuild_instance_indexes() == 0  # present: nothing to do


# ---- actions --------------------------------------------------------------------------------------
def test_actions__page_by_marker_and_filter_while_reading(store: Store) -> None:
    [inst] = servers(store, 1)
    for index in range(30):
        store.record_action(InstanceAction(request_id=new_request_id(), action=f"a{index}",
                                           instance_uuid=inst.id, user_id="u", project_id="demo"))
    newest = store.list_actions(inst.id)
    assert [a.action for a in store.page_actions(inst.id, 1)] == ["a29"]
    page = store.page_actions(inst.id, 5, marker=newest[0].request_id)
    assert [a.action for a in page] == ["a28", "a27", "a26", "a25", "a24"]
    evens = store.page_actions(inst.id, 3, keep=lambda a: int(a.action[1:]) % 2 == 0)
    assert [a.action for a in evens] == ["a28", "a26", "a24"]
    with pytest.raises(MarkerNotFound):
        store.page_actions(inst.id, 1, marker="req-nope")
    assert [a.action for a in store.actions_newer_than(inst.id, newest[2].request_id)] == ["a29", "a28"]
    store.delete_action(newest[0])
    assert [a.action for a in store.page_actions(inst.id, 1)] == ["a28"]


# ---- migrations -----------------------------------------------------------------------------------
def test_migrations__page_per_project_and_for_all_by_uuid_marker(store: Store) -> None:
    made = [store.create_migration(Migration(instance_uuid=f"vm-{i}", project_id="demo" if i % 2 else "other",
                                             migration_type="migration", status="migrating"))
            for i in range(6)]
    assert [m.id for m in store.page_migrations(2)] == [made[5].id, made[4].id]
    assert [m.id for m in store.page_migrations(2, marker=made[4].uuid)] == [made[3].id, made[2].id]
    assert [m.id for m in store.page_migrations(10, project_id="demo")] == [made[5].id, made[3].id, made[1].id]
    with pytest.raises(MarkerNotFound):
        store.page_migrations(10, project_id="demo", marker=made[4].uuid)
    assert [m.id for m in store.list_migrations("vm-3", limit=1)] == [made[3].id]


# ---- the placement index --------------------------------------------------------------------------
def order(store: Store, zone: str = "nova") -> list[str]:
    return [name for name, _ in store.placement_window([zone], 0, 100)]


def test_placement__every_zone_and_its_first_window_in_one_script_as_read_apart(store: Store) -> None:
    """The first read of an unrestricted search gives what placement_zones and placement_first_window
    give apart: the zones sorted, the windows merged by score then name, the counts, the hosts down."""
    for name, memory in (("a", 8192), ("b", 6144), ("c", 8192), ("d", 4096), ("e", 8192), ("f", 2048)):
        store.put_host(small_host(name).model_copy(update={"memory_mb": memory}))
    for zone, members in (("az2", ["c", "d"]), ("az1", ["e", "f"])):
        aggregate = store.create_aggregate(f"agg-{zone}", zone)
        for host in members:
            store.add_aggregate_host(aggregate.id, host)
    store.update_host("b", enabled=False)
    for count, max_score in ((2, -1024.0), (3, -3000.0), (100, -8192.0), (100, -9000.0)):
        zones = store.placement_zones()
        assert store.placement_first_window_every_zone(count, max_score) == (
            zones, *store.placement_first_window(zones, count, max_score))
    assert store.placement_first_window_every_zone(3, -3000.0) == (
        ["az1", "az2", "nova"], [("a", -8192.0), ("c", -8192.0), ("e", -8192.0)], (5, 1), 1)


def test_placement__claims_and_releases_keep_the_candidates_in_free_ram_order(store: Store) -> None:
    for name, memory in (("a", 8192), ("b", 6144), ("c", 8192)):
        store.put_host(small_host(name).model_copy(update={"memory_mb": memory}))
    assert order(store) == ["a", "c", "b"]  # most free RAM first, ties by name
    store.claim_resources("a", "vm-1", SMALL)  # a: 6144 free, ties with b
    assert order(store) == ["c", "a", "b"]
    store.claim_resources("c", "vm-2", Flavor(id="big", name="big", vcpus=1, ram=4096, disk=1))
    assert order(store) == ["a", "b", "c"]
    assert store.placement_window(["nova"], 0, 100) == [("a", -6144.0), ("b", -6144.0), ("c", -4096.0)]
    store.release_claim("c", "vm-2")
    store.release_claim("a", "vm-1")
    assert order(store) == ["a", "c", "b"]
    assert store.placement_window(["nova"], 0, 100, max_score=-7000.0) == [("a", -8192.0), ("c", -8192.0)]
    assert store.placement_counts(["nova"], -7000.0) == (3, 1)


def test_placement__disabled_forced_down_and_deleted_hosts_leave_the_candidates(store: Store) -> None:
    for name in ("a", "b", "c"):
        store.put_host(small_host(name))
    store.update_host("a", enabled=False, disabled_reason="maintenance")
    store.update_host("b", forced_down=True)
    assert order(store) == ["c"]
    total, sample = store.unschedulable_hosts(10)
    assert (total, sorted(h.name for h in sample)) == (2, ["a", "b"])
    store.update_host("a", enabled=True)
    assert order(store) == ["a", "c"]
    store.delete_host("c")
    assert order(store) == ["a"]
    assert store.unschedulable_hosts(10)[0] == 1


def test_placement__a_zone_change_moves_the_host_between_zone_sets(store: Store) -> None:
    for name in ("a", "b"):
        store.put_host(small_host(name))
    zoned = store.create_aggregate("rack-1", "az1")
    store.add_aggregate_host(zoned.id, "a")
    assert (order(store), order(store, "az1")) == (["b"], ["a"])
    plain = store.create_aggregate("plain")
    store.add_aggregate_host(plain.id, "b")
    store.set_aggregate_metadata(plain.id, {"availability_zone": "az2"})
    assert (order(store), order(store, "az2")) == ([], ["b"])
    store.update_aggregate(zoned.id, {"availability_zone": "az3"})
    assert (order(store, "az1"), order(store, "az3")) == ([], ["a"])
    store.remove_aggregate_host(zoned.id, "a")
    assert order(store) == ["a"]
    assert set(store.placement_zones()) >= {"nova", "az2", "az3"}
    assert isinstance(store.get_aggregate(zoned.id), Aggregate)


def test_placement__index_rebuilt_from_the_records(backend: Backend, store: Store) -> None:
    for name in ("a", "b"):
        store.put_host(small_host(name))
    store.claim_resources("b", "vm-1", SMALL)
    for key in list(backend.client.scan_iter(match=f"{backend.prefix}*placement*")):
        backend.client.delete(key)
    assert order(store) == []
    assert store.rebuild_missing_indexes() == {"placement": 2}
    assert order(store) == ["a", "b"]


def test_placement__concurrent_claims_keep_the_score_equal_to_the_usage(real_backend: Backend) -> None:
    store = real_backend.store()
    store.put_host(small_host("a", vcpus=64))
    store.put_host(small_host("b", vcpus=64))

    def claim_and_release(worker: int) -> None:
        for index in range(15):
            host = "ab"[(worker + index) % 2]
            store.claim_resources(host, f"vm-{worker}-{index}", SMALL)
            if index % 3 == 0:
                store.release_claim(host, f"vm-{worker}-{index}")

    assert raised(at_once(6, claim_and_release)) == []
    scores = dict(store.placement_window(["nova"], 0, 10))
    for host in ("a", "b"):
        record, usage = store.get_host(host), store.get_usage(host)
        assert scores[host] == -(record.memory_mb - usage.memory_mb_used)
        assert usage.memory_mb_used == SMALL.ram * len(store.claims_on_host(host))


def test_placement__claims_and_a_release_leave_the_score_equal_to_the_free_ram(store: Store) -> None:
    store.put_host(small_host("a", vcpus=64))
    for index in range(10):
        store.claim_resources("a", f"vm-{index}", SMALL)
    store.release_claim("a", "vm-3")
    [(name, score)] = store.placement_window(["nova"], 0, 10)
    assert (name, score) == ("a", -((1 << 20) - 9 * SMALL.ram))

