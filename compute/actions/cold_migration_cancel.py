"""cold_migration_cancel (DELETE on a cold migration that has not reached its copy; Nova cannot).

The migration goes pre-migrating -> cancelling in the same MULTI as this action; the copy
step moves it pre-migrating -> migrating through the same server record, so only one of
the two can win, and a 202 means the copy will never start.
"""
from __future__ import annotations

from compute import errors
from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state
from compute.instance_actions import COLD_MIGRATION_CANCEL
from compute.migrations import MigrationChange, update_server_and_migration
from compute.models import Instance, Migration
from compute.service import ComputeService
from compute.states import MigrationStatus, MigrationType, TaskState


def cancel_migration(service: ComputeService, ctx: RequestContext, instance: Instance,
                     migration_id: int | str) -> Migration:
    """Cancel a cold migration that has not reached the copy phase; everything rolls back.

    The migration goes pre-migrating -> cancelling in the same MULTI as the
    ``cold_migration_cancel`` action, so a 202 means the copy will never start: the copy
    step moves it pre-migrating -> migrating through the same server record, and only
    one of the two can win. The migrate flow then rolls itself back (it owns its claims)
    and marks the migration cancelled; the cancel's flow waits for that and reports it.
    The policy (admin) is the API's; like every change, locked servers are 409 for others.
    """
    store = service.store
    wanted = str(migration_id)

    def change(inst: Instance) -> Migration:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "cancel_migration", task_states=[TaskState.RESIZE_PREP])
        migration = store.get_migration(wanted) if wanted.isdigit() else None
        if migration is None or migration.instance_uuid != inst.id or migration.migration_type != MigrationType.COLD:
            raise errors.NotFound(f"Migration {migration_id} not found for instance {inst.id}")
        if migration.status != MigrationStatus.PRE_MIGRATING:
            raise errors.Invalid(
                f"Migration {migration.id} state of instance {inst.id} is {migration.status}. "
                "Cannot cancel_migration while the migration is in this state.")
        migration.status = MigrationStatus.CANCELLING
        return migration

    staged = MigrationChange(store, change)

    def withdraw() -> None:
        """Undo when the broker refused the cancel: only if the migrate flow has not acted on it yet."""
        def reopen(inst: Instance, m: Migration) -> None:
            if m.status == MigrationStatus.CANCELLING:
                m.status = MigrationStatus.PRE_MIGRATING

        assert staged.migration is not None
        update_server_and_migration(store, instance.id, staged.migration.uuid, reopen)

    known = store.get_migration(wanted) if wanted.isdigit() else None
    service.start_action(
        ctx, instance.id, COLD_MIGRATION_CANCEL, staged.mutate,
        params={"migration_uuid": known.uuid if known else None},
        also=staged.write, undo=withdraw,
    )
    assert staged.migration is not None
    return staged.migration
