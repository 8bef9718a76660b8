"""``host:{name}:instances`` and ``:deleted_instances``: the servers whose record names a host.

After every kind of write (a create, a placement, a move by the WATCH path or by the known-copy
script, a delete, a purge, a put, an accept) the sets are exactly what a scan of the records gives,
at the ``instances`` score, so a page by host is the all-projects page with the host filter applied.
"""
from __future__ import annotations

from compute.models import Instance
from compute.states import TaskState
from compute.store import Store
from tests.contract.conftest import Backend, action_for
from tests.contract.test_indexes import servers
from tests.support.concurrency import at_once, raised


def scanned(backend: Backend, store: Store) -> dict[str, dict[str, float]]:
    """What the host indexes should hold: every record on a host, at its ``instances`` score."""
    expected: dict[str, dict[str, float]] = {}
    scores = dict(backend.client.zrange(f"{backend.prefix}instances", 0, -1, withscores=True))
    for inst in store.list_instances():
        if inst.host:
            kind = "deleted_instances" if inst.deleted else "instances"
            expected.setdefault(f"host:{inst.host}:{kind}", {})[inst.id] = scores[inst.id]
    return expected


def indexed(backend: Backend) -> dict[str, dict[str, float]]:
    """What the host indexes hold (an empty set is no key)."""
    found = {}
    for key in backend.client.scan_iter(match=f"{backend.prefix}host:*instances", count=1000):
        found[key[len(backend.prefix):]] = dict(backend.client.zrange(key, 0, -1, withscores=True))
    return found


def on_host(host: str | None):
    def mutate(inst: Instance) -> None:
        inst.host = inst.node = host

    return mutate


def deleting(inst: Instance) -> None:
    inst.deleted = True


def test_every_write_leaves_the_host_indexes_equal_to_a_scan(backend: Backend, store: Store) -> None:
    made = servers(store, 4) + servers(store, 2, project="other")
    assert indexed(backend) == scanned(backend, store) == {}  # built, no server placed yet
    for index, inst in enumerate(made):  # placed by the known-copy script (a flow's own copy)
        placed = store.update_instance(inst.id, on_host(f"h{index % 2}"), known=store.get_instance(inst.id))
        assert placed.host == f"h{index % 2}"
        assert indexed(backend) == scanned(backend, store)
    a, b, c, d, e, f = made
    store.update_instance(a.id, on_host("h2"))  # migrated, WATCH path
    assert indexed(backend) == scanned(backend, store)
    action, run = action_for(b, "migrate")
    store.update_instance(b.id, on_host("h2"), action=action, run=run)  # with an action: the MULTI
    assert indexed(backend) == scanned(backend, store)
    store.update_instance(c.id, on_host("h3"), known=store.get_instance(c.id))  # live-migrated by script
    assert indexed(backend) == scanned(backend, store)
    store.update_instance(d.id, on_host(None), known=store.get_instance(d.id))  # unplaced (a revert)
    assert indexed(backend) == scanned(backend, store)
    store.update_instance(e.id, deleting)  # deleted: to the host's deleted set
    assert indexed(backend) == scanned(backend, store)
    store.update_instance(e.id, lambda i: setattr(i, "deleted", False), undoing=True)
    assert indexed(backend) == scanned(backend, store)
    store.purge_instance_record(f.id)
    assert indexed(backend) == scanned(backend, store)
    moved = store.get_instance(a.id)
    moved.host = "h4"
    store.put_instance(moved)  # a fixture's write, new score
    assert indexed(backend) == scanned(backend, store)
    assert set(backend.client.zrange(f"{backend.prefix}host:h2:instances", 0, -1)) == {b.id}


def test_an_accept_that_moves_the_host_falls_back_to_the_record_multi(backend: Backend, store: Store) -> None:
    [inst] = servers(store, 1)
    store.update_instance(inst.id, on_host("h0"))
    known = store.get_instance(inst.id)
    action, run = action_for(known, "migrate")

    def moving(i: Instance) -> None:
        i.host = "h1"
        i.task_state = TaskState.RESIZE_PREP

    assert store.accept_on_known(known, moving, action, run, due_in=30) is None
    assert store.get_instance(inst.id) == known  # the script wrote nothing
    store.update_instance(inst.id, moving, action=action, run=run)
    assert indexed(backend) == scanned(backend, store)
    assert backend.client.zrange(f"{backend.prefix}host:h1:instances", 0, -1) == [inst.id]


def test_a_page_by_host_is_the_all_projects_page_filtered_by_host(backend: Backend, store: Store) -> None:
    made = servers(store, 6) + servers(store, 4, project="other")
    for index, inst in enumerate(made):
        store.update_instance(inst.id, on_host("h0" if index % 3 else "h1"))
    for inst in made[:3]:
        store.update_instance(inst.id, deleting)

    def by_host(inst: Instance) -> bool:
        return inst.host == "h0"

    for deleted in (False, True):
        for project in (None, "other"):
            every = [i.id for i in store.page_instances(100, deleted=deleted, project_id=project, keep=by_host)]
            assert [i.id for i in store.page_instances(100, deleted=deleted, project_id=project,
                                                       host="h0")] == every
            pages, marker = [], None
            while page := store.page_instances(2, deleted=deleted, project_id=project, host="h0", marker=marker):
                pages += [i.id for i in page]
                marker = page[-1].id
            assert pages == every


def test_an_older_store_gets_its_host_indexes_once(backend: Backend, store: Store) -> None:
    made = servers(store, 3)
    for index, inst in enumerate(made):
        store.update_instance(inst.id, on_host(f"h{index % 2}"))
    store.update_instance(made[0].id, deleting)
    expected = scanned(backend, store)
    for key in [*expected, "instances:by_host_built"]:
        backend.client.delete(backend.prefix + key)
    assert store.page_instances(10, host="h1") == []
    assert store.rebuild_missing_indexes()["servers by host"] == 3
    assert indexed(backend) == expected
    assert [i.id for i in store.page_instances(10, host="h1")] == [made[1].id]
    assert "servers by host" not in store.rebuild_missing_indexes()  # built: not again


def test_two_writers_moving_one_server_leave_it_in_one_host_index(real_backend: Backend) -> None:
    store = real_backend.store()
    [inst] = servers(store, 1)
    store.update_instance(inst.id, on_host("h0"))
    for round_ in range(20):
        known = store.get_instance(inst.id)

        def move(index: int, known: Instance = known, round_: int = round_) -> Instance:
            # one writer by the known-copy script, the other by the WATCH path (even rounds) or both by script
            copy = known if index == 0 or round_ % 2 else None
            return store.update_instance(inst.id, on_host(f"h{1 + index}-{round_}"), known=copy)

        outcomes = at_once(2, move)
        assert raised(outcomes) == []
        assert indexed(real_backend) == scanned(real_backend, store)
        final = store.get_instance(inst.id)
        homes = [k for k, members in indexed(real_backend).items() if inst.id in members]
        assert homes == [f"host:{final.host}:instances"]
