"""Cancelling a cold migration before its copy began (``cold_migration_cancel``; Nova cannot).

The API already moved the migration to cancelling, in the MULTI that recorded this
action (compute/actions/cold_migration_cancel.py). The migrate flow sees it at its
next step, undoes what it did (claims, task_state) and marks the migration cancelled;
this flow wakes it, then waits for that with backoff, without holding a worker, so that
this action's one event ends when the rollback has ended and says how it went.
"""
from __future__ import annotations

from compute import instance_actions
from compute.models import FlowRun
from compute.states import MigrationStatus
from tasks.moves import migration_of
from tasks.step import Flow, FlowContext, InConductor, Step, StepFailed, Wait


class AwaitMigrationRollback(InConductor, Step):
    event = "conductor_cold_migration_cancel"

    def execute(self, fc: FlowContext) -> Wait | None:
        migration = migration_of(fc)
        migrate_run = fc.store.get_run(migration.request_id or "")
        if migrate_run is not None and not migrate_run.finished:
            if fc.first_wait:  # the migrate flow sees ``cancelling`` at its next wake: now
                fc.nudge(migrate_run.request_id)
            return fc.backoff()
        if migration.status != MigrationStatus.CANCELLED:
            raise StepFailed(f"Migration {migration.id} ended {migration.status}, not cancelled")
        source = migration.source_compute
        leftover = fc.store.hosts_claimed_by(fc.run.instance_uuid) - {source}
        if leftover:
            raise StepFailed(f"Migration {migration.id} was cancelled but claims remain on {sorted(leftover)}")
        return None


class CancelColdMigrationFlow(Flow):
    name = instance_actions.COLD_MIGRATION_CANCEL

    def steps(self, run: FlowRun) -> list[Step]:
        return [AwaitMigrationRollback()]
