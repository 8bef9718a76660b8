"""Migration records: ids, the uuid lookup, newest-first lists, and checked status moves."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from compute import errors
from compute.models import Instance, Migration
from compute.states import MigrationStatus, TaskState, VmState
from compute.store import Store
from tests.contract.conftest import server


def live(instance_id: str, status: str = MigrationStatus.ACCEPTED) -> Migration:
    return Migration(instance_uuid=instance_id, migration_type="live-migration", status=status,
                     source_compute="compute-1", dest_compute="compute-2")


def test_create__assigns_ids_and_the_uuid_finds_the_record(store: Store) -> None:
    first = store.create_migration(live("vm-1"))
    second = store.create_migration(live("vm-2"))
    assert (first.id, second.id) == (1, 2)
    assert store.get_migration(1) == first
    assert store.get_migration("2") == second
    assert store.get_migration_by_uuid(second.uuid) == second
    assert store.get_migration_by_uuid("nope") is None
    assert sorted(store.scan_keys("migration_uuid:*")) == sorted(
        f"{store.prefix}migration_uuid:{m.uuid}" for m in (first, second))


def test_list__newest_first_overall_and_per_server(store: Store) -> None:
    a1, b1, a2 = (store.create_migration(live(i)) for i in ("vm-a", "vm-b", "vm-a"))
    assert [m.id for m in store.list_migrations()] == [a2.id, b1.id, a1.id]
    assert [m.id for m in store.list_migrations("vm-a")] == [a2.id, a1.id]
    assert store.list_migrations("vm-c") == []
    assert (store.newest_migration_id("vm-a"), store.newest_migration_id("vm-c")) == (a2.id, None)


def test_update__an_allowed_move_is_written(store: Store) -> None:
    migration = store.create_migration(live("vm-1"))
    after = store.update_migration(migration.id, lambda m: setattr(m, "status", MigrationStatus.QUEUED))
    assert store.get_migration(migration.id).status == MigrationStatus.QUEUED
    assert after.updated_at >= migration.updated_at


def test_update__a_refused_move_raises_and_writes_nothing(store: Store) -> None:
    migration = store.create_migration(live("vm-1"))
    with pytest.raises(errors.InvalidStateTransition):
        store.update_migration(migration.id, lambda m: setattr(m, "status", MigrationStatus.COMPLETED))
    assert store.get_migration(migration.id) == migration


def test_update__an_ended_migration_stays_ended(store: Store) -> None:
    migration = store.create_migration(live("vm-1", MigrationStatus.COMPLETED))
    with pytest.raises(errors.InvalidStateTransition):
        store.update_migration(migration.id, lambda m: setattr(m, "status", MigrationStatus.ERROR))


def test_update__unknown_migration(store: Store) -> None:
    with pytest.raises(errors.NotFound):
        store.update_migration(99, lambda m: None)


def test_update__on_a_known_record_changes_a_copy_of_it(store: Store) -> None:
    migration = store.create_migration(live("vm-1"))
    after = store.update_migration(migration.id, lambda m: setattr(m, "status", MigrationStatus.QUEUED),
                                   known=migration)
    assert store.get_migration(migration.id).model_dump() == after.model_dump()
    assert (after.status, migration.status) == (MigrationStatus.QUEUED, MigrationStatus.ACCEPTED)


def test_update__on_a_stale_known_record_changes_the_stored_one(store: Store) -> None:
    """Another writer moved the record since the caller read it: the change is made on what is stored."""
    migration = store.create_migration(live("vm-1"))
    store.update_migration(migration.id, lambda m: setattr(m, "dest_compute", "compute-9"))
    after = store.update_migration(migration.id, lambda m: setattr(m, "status", MigrationStatus.QUEUED),
                                   known=migration)
    assert (after.status, after.dest_compute) == (MigrationStatus.QUEUED, "compute-9")
    assert store.get_migration(migration.id).model_dump() == after.model_dump()


def test_update__a_known_record_refused_is_decided_on_the_stored_one(store: Store) -> None:
    """A change refused on the caller's stale copy is tried on the stored record, which may allow it."""
    migration = store.create_migration(live("vm-1"))
    store.update_migration(migration.id, lambda m: setattr(m, "status", MigrationStatus.QUEUED))

    def only_from_queued(m: Migration) -> None:
        if m.status != MigrationStatus.QUEUED:
            raise errors.Conflict("not queued")
        m.status = MigrationStatus.PREPARING

    after = store.update_migration(migration.id, only_from_queued, known=migration)
    assert store.get_migration(migration.id).status == after.status == MigrationStatus.PREPARING
    with pytest.raises(errors.InvalidStateTransition):
        store.update_migration(migration.id, lambda m: setattr(m, "status", MigrationStatus.COMPLETED), known=after)
    assert store.get_migration(migration.id).model_dump() == after.model_dump()


def test_put_migration__checked_from_previous_status_inside_the_callers_multi(store: Store) -> None:
    inst = server(vm_state=VmState.ACTIVE)
    store.put_instance(inst)
    migration = store.create_migration(live(inst.id))
    before = store.get_instance(inst.id)

    def stage(status: str) -> Callable[[Any], None]:
        record = store.get_migration(migration.id)
        record.status = status
        return lambda pipe: store.put_migration(record, pipe, previous_status=record.loaded_status)

    def migrating(i: Instance) -> None:
        i.task_state = TaskState.MIGRATING

    with pytest.raises(errors.InvalidStateTransition):
        store.update_instance(inst.id, migrating, also=stage(MigrationStatus.RUNNING))
    assert store.get_instance(inst.id) == before
    assert store.get_migration(migration.id).status == MigrationStatus.ACCEPTED

    store.update_instance(inst.id, migrating, also=stage(MigrationStatus.QUEUED))
    assert store.get_instance(inst.id).task_state == TaskState.MIGRATING
    assert store.get_migration(migration.id).status == MigrationStatus.QUEUED


def test_put_migration__without_previous_status_is_not_checked(store: Store) -> None:
    migration = store.create_migration(live("vm-1"))
    migration.status = MigrationStatus.RUNNING
    inst = server()
    store.put_instance(inst)
    store.update_instance(inst.id, lambda i: None, also=lambda pipe: store.put_migration(migration, pipe))
    assert store.get_migration(migration.id).status == MigrationStatus.RUNNING


def test_overwrite_migration__keeps_the_timestamps_given(store: Store) -> None:
    migration = store.create_migration(live("vm-1"))
    store.overwrite_migration(migration.model_copy(update={"updated_at": "2020-01-01T00:00:00.000000"}))
    assert store.get_migration(migration.id).updated_at == "2020-01-01T00:00:00.000000"
