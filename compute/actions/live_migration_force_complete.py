"""live_migration_force_complete (2.22+): ask the running copy job to converge now.

It never touches the migration's claims or state itself: its flow asks the driver to
finish the copy job that the migration's own flow is polling.
"""
from __future__ import annotations

from compute import errors
from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state
from compute.instance_actions import LIVE_MIGRATION_FORCE_COMPLETE
from compute.migrations import (
    InvalidMigrationState,
    MigrationNotFoundForInstance,
    current_status,
    server_migration,
)
from compute.models import Instance
from compute.service import ComputeService
from compute.states import MigrationStatus, MigrationType, TaskState, VmState


def force_complete(service: ComputeService, ctx: RequestContext, instance: Instance,
                   migration_id: str) -> None:
    """Only an ACTIVE server's ``running`` live migration; a missing migration is a 400 here."""
    migration = server_migration(service.store, instance, migration_id)
    if migration is not None and migration.migration_type != MigrationType.LIVE:
        raise InvalidMigrationState(migration.id, instance.id, migration.status, "force complete")

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "force_complete", vm_states=[VmState.ACTIVE],
                             task_states=[TaskState.MIGRATING])
        if migration is None:
            raise errors.Invalid(MigrationNotFoundForInstance(migration_id, inst.id).message)
        status = current_status(service.store, migration)
        if status != MigrationStatus.RUNNING:
            raise InvalidMigrationState(migration.id, inst.id, status, "force complete")

    service.start_action(ctx, instance.id, LIVE_MIGRATION_FORCE_COMPLETE, guard,
                         params={"migration_id": migration_id}, known=instance)
