"""``instances:status``: servers by Nova status, kept by every write of a server record in its MULTI.

The metrics read ``compute_actions_servers`` from it instead of every record, so it must always be
the count of the records: after creates, status changes, a delete and its undo, a purge, a
server written over, a rebuild of a store that lacks it, and writers racing on real Redis.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from compute.models import Instance
from compute.states import TaskState, VmState, server_status
from compute.store import Store
from tests.contract.conftest import SMALL, Backend, action_for
from tests.support.concurrency import at_once, raised


def recount(store: Store) -> dict[str, int]:
    """The count the hash must hold, from every record (what the metrics read before it existed)."""
    return dict(Counter(server_status(i.vm_state, i.task_state) for i in store.list_instances() if not i.deleted))


def kept(store: Store) -> dict[str, int]:
    return {status: n for status, n in store.status_counts().items() if n}


def create(store: Store, count: int) -> list[Instance]:
    made = []
    for index in range(count):
        inst = Instance(name=f"vm-{index}", project_id="demo", user_id="u", flavor=SMALL)
        action, run = action_for(inst)
        store.create_instance(inst, action, run, due_in=30)
        made.append(inst)
    return made


def set_state(vm_state: str, task_state: str | None, deleted: bool = False) -> Callable[[Instance], None]:
    def mutate(inst: Instance) -> None:
        inst.vm_state, inst.task_state, inst.deleted = vm_state, task_state, deleted
    return mutate


def test_status_counts__follow_every_write_of_a_server(store: Store) -> None:
    first, second, third = create(store, 3)
    assert kept(store) == recount(store) == {"BUILD": 3}
    store.update_instance(first.id, set_state(VmState.ACTIVE, None), undoing=True)
    store.update_instance(second.id, set_state(VmState.ACTIVE, TaskState.MIGRATING), undoing=True)
    assert kept(store) == recount(store) == {"BUILD": 1, "ACTIVE": 1, "MIGRATING": 1}
    store.update_instance(second.id, set_state(VmState.ACTIVE, None), undoing=True)
    assert store.status_counts()["MIGRATING"] == 0  # left at 0, so the gauge drops instead of vanishing
    store.update_instance(third.id, set_state(VmState.BUILDING, None, deleted=True), undoing=True)
    assert kept(store) == recount(store) == {"ACTIVE": 2}
    store.update_instance(third.id, set_state(VmState.ERROR, None), undoing=True)  # undeleted, in error
    assert kept(store) == recount(store) == {"ACTIVE": 2, "ERROR": 1}
    store.purge_instance_record(third.id)
    stopped = store.get_instance(first.id)
    assert stopped is not None
    stopped.vm_state = VmState.STOPPED
    store.put_instance(stopped)  # written over: leaves ACTIVE for SHUTOFF
    fresh = Instance(name="seeded", project_id="demo", user_id="u", flavor=SMALL, vm_state=VmState.ACTIVE)
    store.put_instance(fresh)
    assert kept(store) == recount(store) == {"ACTIVE": 2, "SHUTOFF": 1}


def test_status_counts__one_hgetall_whatever_the_number_of_servers(backend: Backend) -> None:
    create(backend.store(), 5)
    store, counter = backend.counting()
    assert store.status_counts() == {"BUILD": 5}
    assert counter.direct == ["hgetall"]


def test_status_counts__missing_from_an_older_store_are_rebuilt_at_start(backend: Backend, store: Store) -> None:
    made = create(store, 4)
    store.update_instance(made[0].id, set_state(VmState.ACTIVE, None), undoing=True)
    store.update_instance(made[1].id, set_state(VmState.ACTIVE, None, deleted=True), undoing=True)
    backend.client.delete(f"{backend.prefix}instances:status")
    assert store.status_counts() == {}
    assert store.rebuild_missing_indexes()["servers by status"] == 3
    assert kept(store) == recount(store) == {"BUILD": 2, "ACTIVE": 1}
    assert store.rebuild_status_counts() == 0  # present: nothing to do
    assert "servers by status" not in store.rebuild_missing_indexes()


def test_status_counts__no_live_server_nothing_to_rebuild(backend: Backend, store: Store) -> None:
    (only,) = create(store, 1)
    store.update_instance(only.id, set_state(VmState.ACTIVE, None, deleted=True), undoing=True)
    backend.client.delete(f"{backend.prefix}instances:status")
    assert store.rebuild_status_counts() == 0
    assert store.status_counts() == {} and recount(store) == {}


def test_status_counts__concurrent_writers_keep_them_equal_to_the_records(real_backend: Backend) -> None:
    store = real_backend.store()
    shared = create(store, 4)
    states = [(VmState.ACTIVE, None), (VmState.ACTIVE, TaskState.MIGRATING), (VmState.STOPPED, None),
              (VmState.PAUSED, None), (VmState.ERROR, None)]

    def writer(worker: int) -> None:
        for index in range(20):
            target = shared[(worker + index) % len(shared)]  # every thread writes every shared server
            vm_state, task_state = states[(worker * 7 + index) % len(states)]
            store.update_instance(target.id, set_state(vm_state, task_state, deleted=index % 9 == 8),
                                  undoing=True)
            if index % 5 == 0:
                (mine,) = create(store, 1)
                if index % 10 == 0:
                    store.purge_instance_record(mine.id)

    assert raised(at_once(6, writer)) == []
    assert kept(store) == recount(store)
    assert sum(store.status_counts().values()) == sum(1 for i in store.list_instances() if not i.deleted)
