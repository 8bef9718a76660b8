"""live_migration_cancel (DELETE /servers/{id}/migrations/{id}, 2.24+): abort a live migration.

The abort's flow moves the migration record to ``cancelled`` (a compare-and-set the
migration's own flow sees at its next step or poll, and then rolls back); this write only
checks and records the request.
"""
from __future__ import annotations

from collections.abc import Iterable

from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state
from compute.instance_actions import LIVE_MIGRATION_CANCEL
from compute.migrations import (
    InvalidMigrationState,
    MigrationNotFoundForInstance,
    current_status,
    server_migration,
)
from compute.models import Instance
from compute.service import ComputeService
from compute.states import MigrationStatus, MigrationType, TaskState

ABORTABLE = (MigrationStatus.RUNNING,)
ABORTABLE_FROM_2_65 = (MigrationStatus.QUEUED, MigrationStatus.PREPARING, MigrationStatus.RUNNING)


def abort(service: ComputeService, ctx: RequestContext, instance: Instance, migration_id: str, *,
          abortable: Iterable[str] = ABORTABLE) -> None:
    """Any vm_state with task_state ``migrating``; ``abortable`` widens to queued/preparing from 2.65."""
    allowed = tuple(abortable)
    migration = server_migration(service.store, instance, migration_id)
    if migration is not None and migration.migration_type != MigrationType.LIVE:
        raise InvalidMigrationState(migration.id, instance.id, migration.status, "abort live migration")

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "abort live migration", vm_states=None, task_states=[TaskState.MIGRATING])
        if migration is None:
            raise MigrationNotFoundForInstance(migration_id, inst.id)
        status = current_status(service.store, migration)
        if status not in allowed:
            raise InvalidMigrationState(migration.id, inst.id, status, "abort live migration")

    service.start_action(ctx, instance.id, LIVE_MIGRATION_CANCEL, guard,
                         params={"migration_id": migration_id, "abortable": list(allowed)}, known=instance)
