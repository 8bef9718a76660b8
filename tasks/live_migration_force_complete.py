"""live_migration_force_complete: make a running live migration converge now.

Nova's compute ``live_migration_force_complete`` asks libvirt to switch to post-copy or pause
the guest; here the driver is asked to force the copy job that the migration's own flow
polls, and that flow then completes as usual. The migration must still be ``running``.
"""
from __future__ import annotations

from typing import ClassVar

from compute import instance_actions
from compute.migrations import InvalidMigrationState
from compute.models import FlowRun
from compute.states import MigrationStatus
from tasks.live_migrate import TransferGuest
from tasks.moves import migration_of
from tasks.step import Flow, FlowContext, Step, StepFailed, operation_id


class ForceCompleteLiveMigration(Step):
    event: ClassVar[str | None] = "compute_live_migration_force_complete"

    def execute(self, fc: FlowContext) -> None:
        migration = migration_of(fc)
        if migration.status != MigrationStatus.RUNNING:
            raise InvalidMigrationState(migration.id, migration.instance_uuid, migration.status, "force complete")
        if not migration.request_id or fc.store.get_run(migration.request_id) is None:
            raise StepFailed(f"Migration {migration.id} has no live migration to force")
        fc.driver.live_migration_force_complete(operation_id(migration.request_id, TransferGuest.operation))


class LiveMigrationForceCompleteFlow(Flow):
    name = instance_actions.LIVE_MIGRATION_FORCE_COMPLETE

    def steps(self, run: FlowRun) -> list[Step]:
        return [ForceCompleteLiveMigration()]
