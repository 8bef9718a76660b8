"""Instance records: create with its action, compare-and-set under the task_state table, purge."""
from __future__ import annotations

import pytest

from compute import errors
from compute.models import Image, Instance
from compute.states import TaskState, VmState
from compute.store import Store
from tests.contract.conftest import Backend, action_for, server


def created(store: Store, **fields: object) -> Instance:
    inst = server(**fields)
    action, run = action_for(inst)
    store.create_instance(inst, action, run, due_in=30)
    return inst


def test_create__writes_the_server_its_action_and_its_run_together(store: Store) -> None:
    inst = server()
    action, run = action_for(inst)
    store.create_instance(inst, action, run, due_in=30)
    assert store.get_instance(inst.id) == inst
    assert [i.id for i in store.list_instances()] == [inst.id]
    assert [a.request_id for a in store.list_actions(inst.id)] == [action.request_id]
    assert store.get_run(run.request_id) == run
    assert store.active_run_count() == 1


def test_list__in_creation_order(store: Store) -> None:
    ids = [created(store).id for _ in range(3)]
    assert [i.id for i in store.list_instances()] == ids


def test_update__mutates_and_stamps(store: Store) -> None:
    inst = created(store, vm_state=VmState.ACTIVE)

    def begin(i: Instance) -> None:
        i.task_state = TaskState.IMAGE_BACKUP

    after = store.update_instance(inst.id, begin)
    assert after.task_state == TaskState.IMAGE_BACKUP
    assert after.updated_at >= inst.updated_at
    assert store.get_instance(inst.id) == after


def test_update__a_move_outside_the_task_state_table_is_refused_and_writes_nothing(store: Store) -> None:
    inst = created(store, vm_state=VmState.ACTIVE)
    before = store.get_instance(inst.id)
    action, run = action_for(inst, "migrate")

    def leap(i: Instance) -> None:
        i.task_state = TaskState.RESIZE_MIGRATED

    with pytest.raises(errors.InvalidStateTransition):
        store.update_instance(inst.id, leap, action=action, run=run)
    assert store.get_instance(inst.id) == before
    assert store.get_action(action.request_id) is None
    assert store.get_run(run.request_id) is None


def test_update__undoing_is_not_checked_against_the_table(store: Store) -> None:
    inst = created(store, vm_state=VmState.ACTIVE, task_state=TaskState.RESIZE_MIGRATED)

    def put_back(i: Instance) -> None:
        i.task_state = TaskState.RESIZE_PREP

    assert store.update_instance(inst.id, put_back, undoing=True).task_state == TaskState.RESIZE_PREP


def test_update__a_raising_mutate_aborts(store: Store) -> None:
    inst = created(store)
    before = store.get_instance(inst.id)

    def refuse(i: Instance) -> None:
        i.name = "changed"
        raise errors.Conflict("no")

    with pytest.raises(errors.Conflict):
        store.update_instance(inst.id, refuse)
    assert store.get_instance(inst.id) == before


def test_update__unknown_server(store: Store) -> None:
    with pytest.raises(errors.InstanceNotFound):
        store.update_instance("nope", lambda i: None)


def test_update__a_concurrent_write_makes_it_retry_on_the_fresh_record(store: Store) -> None:
    """WATCH: a write between the read and the EXEC discards the MULTI, and ``mutate`` runs again."""
    inst = created(store)
    seen: list[str] = []

    def rename(i: Instance) -> None:
        seen.append(i.name)
        if len(seen) == 1:
            store.update_instance(inst.id, lambda other: setattr(other, "name", "renamed-meanwhile"))
        i.metadata["touched"] = "yes"

    after = store.update_instance(inst.id, rename)
    assert seen == ["vm", "renamed-meanwhile"]
    assert (after.name, after.metadata) == ("renamed-meanwhile", {"touched": "yes"})


def test_update__action_run_and_also_join_the_same_multi(store: Store) -> None:
    inst = created(store, vm_state=VmState.ACTIVE)
    action, run = action_for(inst, "createBackup")
    image = Image(name="backup")

    def begin(i: Instance) -> None:
        i.task_state = TaskState.IMAGE_BACKUP

    store.update_instance(inst.id, begin, action=action, run=run, due_in=5,
                          also=lambda pipe: store.put_image(image, pipe))
    assert store.get_action(action.request_id).seq > 0
    assert store.get_run(run.request_id) is not None
    assert store.get_image(image.id) == image


def test_put_instance__seeds_a_server_without_an_action(store: Store) -> None:
    inst = server(vm_state=VmState.ACTIVE)
    store.put_instance(inst)
    assert store.get_instance(inst.id) == inst
    assert [i.id for i in store.list_instances()] == [inst.id]
    assert store.list_actions(inst.id) == []


def test_purge__removes_the_record_and_its_index_entry_in_one_multi(backend: Backend) -> None:
    store = backend.store()
    inst = created(store)
    counted, client = backend.counting()
    counted.purge_instance_record(inst.id)
    assert (client.direct, client.multis) == ([], 1)
    assert store.get_instance(inst.id) is None
    assert store.list_instances() == []
    assert store.scan_keys(f"instance:{inst.id}") == store.scan_keys("instances") == []
