"""Migration records, for both kinds: reads, and a server and its migration written together.

One rule keeps cold migrations safe with any number of API, worker and periodic processes:
a cold migration's record is only ever written in the same MULTI as its server's record
(:class:`MigrationChange`). The server's WATCH then serializes every change to the pair,
so of two confirms, a confirm and a revert, or a cancel and the copy step, exactly one
wins, and no crash can leave one record changed without the other. Every status change is
checked against the table in compute/states.py by the store.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from compute import errors
from compute.context import RequestContext
from compute.guards import (
    check_compute_up,
    check_instance_lock,
    check_instance_state,
    check_launched,
)
from compute.models import Instance, Migration
from compute.service import ComputeService
from compute.states import IN_PROGRESS, MigrationStatus, MigrationType, VmState
from compute.store import Store

# confirmResize and revertResize finish both kinds of cold move.
RESIZE_FAMILY = (MigrationType.COLD, MigrationType.RESIZE)
NOT_RESIZED = "Instance has not been resized."


class InvalidMigrationState(errors.Invalid):
    def __init__(self, migration_id: int | str, instance_uuid: str, state: str, method: str) -> None:
        super().__init__(f"Migration {migration_id} state of instance {instance_uuid} is {state}. "
                         f"Cannot {method} while the migration is in this state.")


class MigrationNotFoundForInstance(errors.NotFound):
    def __init__(self, migration_id: int | str, instance_uuid: str) -> None:
        super().__init__(f"Migration {migration_id} not found for instance {instance_uuid}")


def stage_migration(store: Store, pipe: Any, migration: Migration) -> None:
    """Queue a migration record into the caller's MULTI (a seam the race tests spy on)."""
    store.put_migration(migration, pipe, previous_status=migration.loaded_status)


class MigrationChange:
    """A compare-and-set on a server that also changes one of its migrations, in one MULTI.

    ``change(inst)`` checks and mutates the server (it may raise to abort) and returns
    the migration record, read fresh and changed, to write with it. ``mutate`` and
    ``write`` are what Store.update_instance and ComputeService.start_action take as the
    mutation and as ``also``.
    """

    def __init__(self, store: Store, change: Callable[[Instance], Migration]) -> None:
        self.store = store
        self.change = change
        self.migration: Migration | None = None

    def mutate(self, inst: Instance) -> None:
        self.migration = self.change(inst)

    def write(self, pipe: Any) -> None:
        assert self.migration is not None
        stage_migration(self.store, pipe, self.migration)


def update_server_and_migration(store: Store, instance_id: str, migration_uuid: str,
                                change: Callable[[Instance, Migration], None]) -> Migration:
    """Change a server and its migration together; ``change`` may raise to leave both as they were."""
    def read_and_change(inst: Instance) -> Migration:
        migration = get_migration(store, migration_uuid)
        change(inst, migration)
        return migration

    staged = MigrationChange(store, read_and_change)
    store.update_instance(instance_id, staged.mutate, also=staged.write)
    assert staged.migration is not None
    return staged.migration


def get_migration(store: Store, migration_uuid: str) -> Migration:
    migration = store.get_migration_by_uuid(migration_uuid)
    if migration is None:
        raise errors.NotFound(f"Migration {migration_uuid} could not be found.")
    return migration


def finished_migration(store: Store, instance_id: str) -> Migration | None:
    """The move waiting for confirmResize or revertResize (Nova: get_by_instance_and_status 'finished')."""
    return next((m for m in store.list_migrations(instance_id)
                 if m.status == MigrationStatus.FINISHED and m.migration_type in RESIZE_FAMILY), None)


def server_migration(store: Store, instance: Instance, migration_id: str) -> Migration | None:
    """The server's migration with that id (any type), or None; ids are Nova's integers."""
    if not re.fullmatch(r"[0-9]{1,19}", str(migration_id)):
        return None
    migration = store.get_migration(int(migration_id))
    return migration if migration is not None and migration.instance_uuid == instance.id else None


def current_status(store: Store, migration: Migration) -> str:
    fresh = store.get_migration(migration.id)
    return fresh.status if fresh is not None else migration.status


def in_progress_live_migrations(store: Store, instance: Instance) -> list[Migration]:
    return [m for m in store.list_migrations(instance.id)
            if m.migration_type == MigrationType.LIVE and m.status in IN_PROGRESS]


def finish_the_move(service: ComputeService, ctx: RequestContext, instance: Instance, *, action: str,
                     method: str, new_status: str, new_task_state: str | None) -> Migration:
    """confirmResize or revertResize: the checks of nova-contract.md §4.3-4.4 in Nova's order, then
    the finished migration's new status and the server's task_state, with the action, in one MULTI."""
    store = service.store
    candidate = finished_migration(store, instance.id)

    def change(inst: Instance) -> Migration:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, method, vm_states=[VmState.RESIZED])
        check_launched(inst, method)
        migration = store.get_migration(candidate.id) if candidate is not None else None
        if migration is None or migration.status != MigrationStatus.FINISHED:
            raise errors.Invalid(NOT_RESIZED)
        check_compute_up(store.get_host(migration.source_compute) if migration.source_compute else None)
        migration.status = new_status
        inst.task_state = new_task_state
        return migration

    def reopen() -> None:
        """Undo when the broker refused the message: the migration is finished again."""
        def finished_again(inst: Instance, m: Migration) -> None:
            if m.status == new_status:
                m.status = MigrationStatus.FINISHED

        assert candidate is not None
        update_server_and_migration(store, instance.id, candidate.uuid, finished_again)

    staged = MigrationChange(store, change)
    service.start_action(ctx, instance.id, action, staged.mutate,
                         params={"migration_uuid": candidate.uuid if candidate else None},
                         also=staged.write, undo=reopen)
    assert staged.migration is not None
    return staged.migration
