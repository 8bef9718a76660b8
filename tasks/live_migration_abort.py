"""live_migration_cancel: stop a live migration and roll it back.

The abort is a compare-and-set of the migration record to ``cancelled``, allowed only from the
statuses the request was accepted for (``running``; also ``queued``/``preparing`` from 2.65).
The migration's own flow sees it at its next step or poll, cancels its copy job and rolls back
(claims, destination, task_state), leaving the record ``cancelled``. This action's one event
ends when that rollback has ended, without holding a worker while it waits (it wakes the
migration's flow at once, then looks again with backoff). A migration that
reached ``completed`` first cannot be aborted, and the event says so.
"""
from __future__ import annotations

from typing import ClassVar

from compute import instance_actions
from compute.migrations import InvalidMigrationState
from compute.models import FlowRun, Migration
from compute.states import MigrationStatus
from tasks.moves import migration_of, update_migration
from tasks.step import Flow, FlowContext, Step, StepFailed, Wait

EVENT = "compute_live_migration_abort"


class CancelMigration(Step):
    event: ClassVar[str | None] = EVENT

    def execute(self, fc: FlowContext) -> None:
        abortable = set(fc.params["abortable"]) | {MigrationStatus.CANCELLED}

        def cancel(m: Migration) -> None:
            if m.status not in abortable:
                raise InvalidMigrationState(m.id, m.instance_uuid, m.status, "abort live migration")
            m.status = MigrationStatus.CANCELLED

        migration = update_migration(fc, cancel)
        # The migration's flow sees ``cancelled`` at its next wake; wake it now instead.
        if migration.request_id:
            fc.nudge(migration.request_id)


class AwaitRollback(Step):
    event: ClassVar[str | None] = EVENT

    def execute(self, fc: FlowContext) -> Wait | None:
        migration = migration_of(fc)
        migrating = fc.store.get_run(migration.request_id or "")
        if migrating is not None and not migrating.finished:
            return fc.backoff()
        leftover = fc.store.hosts_claimed_by(fc.run.instance_uuid) - {fc.instance().host}
        if leftover:
            raise StepFailed(f"Migration {migration.id} was cancelled but claims remain on {sorted(leftover)}")
        return None


class LiveMigrationAbortFlow(Flow):
    name = instance_actions.LIVE_MIGRATION_CANCEL

    def steps(self, run: FlowRun) -> list[Step]:
        return [CancelMigration(), AwaitRollback()]
