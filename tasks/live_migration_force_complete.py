"""live_migration_force_complete: make a running live migration converge now.

Nova's compute ``live_migration_force_complete`` asks libvirt to switch to post-copy or pause
the guest; here the driver is asked to force the copy job that the migration's own flow
polls, and that flow then completes as usual. The migration must still be ``running``.
"""
from __future__ import annotations

from typing import ClassVar

from compute.live_migration import RUNNING, InvalidMigrationState
from compute.models import FlowRun
from tasks.flow import Flow, FlowContext, Step, StepFailed
from tasks.live_migrate import TransferGuest


class ForceCompleteLiveMigration(Step):
    event: ClassVar[str | None] = "compute_live_migration_force_complete"

    def execute(self, fc: FlowContext) -> None:
        migration = fc.store.get_migration(fc.params["migration_id"])
        if migration is None:
            raise StepFailed(f"Migration {fc.params['migration_id']} could not be found.")
        if migration.status != RUNNING:
            raise InvalidMigrationState(migration.id, migration.instance_uuid, migration.status, "force complete")
        migrating = fc.store.get_run(migration.request_id or "")
        if migrating is None:
            raise StepFailed(f"Migration {migration.id} has no live migration to force")
        copy = FlowContext(fc.store, fc.driver, fc.settings, migrating)
        fc.driver.live_migration_force_complete(TransferGuest().op_id(copy))


class LiveMigrationForceCompleteFlow(Flow):
    name = "live_migration_force_complete"

    def steps(self, run: FlowRun) -> list[Step]:
        return [ForceCompleteLiveMigration()]
