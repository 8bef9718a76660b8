"""live_migration_cancel: stop a live migration and roll it back.

The abort is a compare-and-set of the migration record to ``cancelled``, allowed only from the
statuses the request was accepted for (``running``; also ``queued``/``preparing`` from 2.65).
The migration's own flow sees it at its next step or poll, cancels its copy job and rolls back
(claims, destination, task_state), leaving the record ``cancelled``. This action's one event
ends when that rollback has ended, without holding a worker while it waits. A migration that
reached ``completed`` first cannot be aborted, and the event says so.
"""
from __future__ import annotations

from typing import ClassVar

from compute.live_migration import CANCELLED, InvalidMigrationState
from compute.models import FlowRun, Migration
from tasks.flow import Flow, FlowContext, Step, StepFailed, Wait

EVENT = "compute_live_migration_abort"


def migration_of(fc: FlowContext) -> Migration:
    migration = fc.store.get_migration(fc.params["migration_id"])
    if migration is None:
        raise StepFailed(f"Migration {fc.params['migration_id']} could not be found.")
    return migration


class CancelMigration(Step):
    event: ClassVar[str | None] = EVENT

    def execute(self, fc: FlowContext) -> None:
        abortable = set(fc.params["abortable"]) | {CANCELLED}

        def cancel(m: Migration) -> None:
            if m.status not in abortable:
                raise InvalidMigrationState(m.id, m.instance_uuid, m.status, "abort live migration")
            m.status = CANCELLED

        fc.store.update_migration(migration_of(fc).id, cancel)


class AwaitRollback(Step):
    event: ClassVar[str | None] = EVENT

    def execute(self, fc: FlowContext) -> Wait | None:
        migration = migration_of(fc)
        migrating = fc.store.get_run(migration.request_id or "")
        if migrating is not None and not migrating.finished:
            return Wait(fc.poll_interval())
        leftover = fc.store.hosts_claimed_by(fc.run.instance_uuid) - {fc.instance().host}
        if leftover:
            raise StepFailed(f"Migration {migration.id} was cancelled but claims remain on {sorted(leftover)}")
        return None


class LiveMigrationAbortFlow(Flow):
    name = "live_migration_abort"

    def steps(self, run: FlowRun) -> list[Step]:
        return [CancelMigration(), AwaitRollback()]
