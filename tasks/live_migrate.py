"""os-migrateLive: find and check a destination, then pre-migrate, copy, post-migrate.

Mirrors nova/conductor/tasks/live_migrate.py (``_execute``; the destination search is in
tasks/live_migration_destination.py) and the compute manager's ``live_migration`` /
``pre_live_migration`` / ``_post_live_migration`` / ``_rollback_live_migration``. The
migration record moves accepted -> queued -> preparing -> running -> completed; the server
keeps its vm_state with task_state ``migrating`` throughout.

Events, in Nova's names: the conductor's (``conductor_live_migrate_instance``, or
``conductor_migrate_server`` below 2.34) spans choosing the destination, with a pair of
check events per destination tried; then ``compute_live_migration``,
``compute_pre_live_migration``, ``compute_post_live_migration_at_destination``, or on a
failure after pre-migration began, ``compute_rollback_live_migration_at_destination``.

Claims: the server keeps its claim on the source and gains one on the destination; the
source claim is released when the server has moved. Every revert leaves claims where the
server is. The copy is polled by re-enqueued deliveries (Wait), never by a sleeping worker.
"""
from __future__ import annotations

import time
from typing import Any

from compute import errors, instance_actions
from compute.driver import OperationStatus
from compute.migration_checks import transfer_gib
from compute.models import ActionEvent, FlowRun, Instance, Migration, utcnow
from compute.scheduler import public_reason
from compute.states import LIVE_PROGRESSION, MIGRATION_ENDED, MigrationStatus, TaskState
from tasks.instance_steps import DriverOperation
from tasks.live_migration_destination import (
    CONDUCTOR_EVENT,
    CONDUCTOR_EVENT_BEFORE_REPLY,
    FindDestination,
    FindDestinationBeforeReply,
    LiveDestinationSearchValues,
)
from tasks.moves import (
    MIGRATION,
    MoveValues,
    OnDestination,
    host_record,
    migration_of,
    refuse_if_being_deleted,
    update_migration,
)
from tasks.step import (
    Checkpoint,
    Flow,
    FlowContext,
    InConductor,
    Step,
    StepFailed,
    Wait,
)

ROLLBACK_AT_DESTINATION = "compute_rollback_live_migration_at_destination"
CANCELLED_MESSAGE = "Migration operation was cancelled"


class LiveMigrationValues(LiveDestinationSearchValues, MoveValues):
    failure_status: str = MigrationStatus.ERROR  # how the record ends on a failure; ``failed`` once preparing
    destination_touched: bool = False  # pre-migration was started: the destination needs its rollback
    transfer_started_at: float | None = None  # on the hypervisor's clock, for the completion timeout
    timeout_forced: bool = False  # the completion timeout already forced the copy to converge


class MigrationCancelled(StepFailed):
    def __init__(self, message: str = CANCELLED_MESSAGE) -> None:
        super().__init__(message)


# ---- the migration record --------------------------------------------------------------------------
def advance(fc: FlowContext, status: str, **fields: Any) -> Migration:
    """Move the record forward to ``status`` (a rerun finds it there); an abort's ``cancelled`` stops the flow.

    A record already there, with those fields, is not written again: it is only read, for an abort.
    """
    refuse_if_being_deleted(fc)
    if reached(migration_of(fc), status, fields):
        fresh = fc.store.get_migration(migration_of(fc).id)
        if fresh is not None and reached(fresh, status, fields):
            fc.remember(MIGRATION, "", fresh)
            return fresh

    def mutate(m: Migration) -> None:
        if m.status == MigrationStatus.CANCELLED:
            raise MigrationCancelled()
        if m.status not in LIVE_PROGRESSION:
            raise StepFailed(f"Migration {m.id} is {m.status}")
        if LIVE_PROGRESSION.index(m.status) < LIVE_PROGRESSION.index(status):
            m.status = status
        for name, value in fields.items():
            setattr(m, name, value)

    return update_migration(fc, mutate)


def reached(m: Migration, status: str, fields: dict[str, Any]) -> bool:
    """The record is at ``status`` or past it on the live progression, with ``fields`` as given."""
    return (m.status in LIVE_PROGRESSION and LIVE_PROGRESSION.index(m.status) >= LIVE_PROGRESSION.index(status)
            and all(getattr(m, name) == value for name, value in fields.items()))


def cancel_migration(fc: FlowContext) -> None:
    def mutate(m: Migration) -> None:
        if m.status not in MIGRATION_ENDED:
            m.status = MigrationStatus.CANCELLED

    update_migration(fc, mutate)


def hypervisor_now(fc: FlowContext) -> float:
    """The clock the copy is timed on: the hypervisor's (the simulated fleet keeps one tests can move)."""
    clock = getattr(fc.driver, "clock", None)
    return float(clock.now()) if clock is not None else time.time()


def close_event(event: ActionEvent, error: str | None = None) -> ActionEvent:
    event.finish_time = utcnow()
    event.result = "Error" if error else "Success"
    event.details = error
    return event


# ---- steps -------------------------------------------------------------------------------------
class RestoreOnFailure(Checkpoint):
    """On revert: task_state cleared (vm_state kept, as Nova's ``_set_vm_state``) and the migration
    ended ``error`` or ``failed`` by where it broke; an abort's ``cancelled`` stays."""

    def revert(self, fc: FlowContext) -> None:
        try:
            record: Migration | None = migration_of(fc)
        except StepFailed:
            record = None
        cancelled = record is not None and record.status == MigrationStatus.CANCELLED
        reason = public_reason(fc.run.error or "Live migration failed")

        def restore(inst: Instance) -> None:
            if inst.task_state == TaskState.MIGRATING:
                inst.task_state = None
                inst.progress = 0
                if not cancelled:
                    inst.fault = {"code": 500, "message": reason, "created": utcnow()}

        fc.update_instance(restore)
        if record is None:
            return
        # A migration abandoned by the reaper ends ``error``, as Nova's _reset_live_migration leaves it.
        status = MigrationStatus.ERROR if fc.run.abort_reason else LiveMigrationValues.of(fc).failure_status

        def conclude(m: Migration) -> None:
            if m.status not in MIGRATION_ENDED:
                m.status = status

        fc.store.update_migration(record.id, conclude)


class RecordDestination(InConductor, Step):
    """The conductor's last act before the cast: the destination on the migration record.

    It shares the conductor's event, so the event closes here, keeping FindDestination's details.
    """

    event = CONDUCTOR_EVENT

    def execute(self, fc: FlowContext) -> None:
        inst, dest = fc.instance(), host_record(fc, LiveMigrationValues.of(fc).destination)
        advance(fc, MigrationStatus.ACCEPTED, source_node=inst.node, dest_compute=dest.name, dest_node=dest.node,
                dest_host=dest.host_ip)


class RecordDestinationBeforeReply(RecordDestination):
    event = CONDUCTOR_EVENT_BEFORE_REPLY


class QueueLiveMigration(Step):
    """The source compute accepts the job (its event closes at once, as Nova's does)."""

    event = "compute_live_migration"

    def execute(self, fc: FlowContext) -> None:
        advance(fc, MigrationStatus.QUEUED)


class PreLiveMigration(OnDestination, DriverOperation):
    """Plug the server's networking and disks on the destination; from here a failure ends ``failed``."""

    event = "compute_pre_live_migration"
    operation = "pre_live_migration"

    def execute(self, fc: FlowContext) -> Wait | None:
        values = LiveMigrationValues.of(fc)
        values.failure_status = MigrationStatus.FAILED
        advance(fc, MigrationStatus.PREPARING)
        values.destination_touched = True
        return super().execute(fc)

    def revert(self, fc: FlowContext) -> None:
        """Nova's rollback_live_migration_at_destination; it is not waited for, its outcome is recorded."""
        super().revert(fc)
        values = LiveMigrationValues.of(fc)
        if not values.destination_touched or values.destination is None:
            return
        op_id = fc.op_id("rollback_live_migration_at_destination")
        event = fc.open_event(ROLLBACK_AT_DESTINATION, values.destination)
        try:
            fc.driver.rollback_live_migration_at_destination(op_id, values.destination, fc.instance())
            status = fc.driver.poll(op_id)
            error = status.error if status.done else None
        except errors.ComputeError as exc:
            error = exc.message
        close_event(event, error)
        event.details = error or public_reason(fc.run.error or CANCELLED_MESSAGE)
        fc.record_events(event)


class TransferGuest(Step):
    """The copy (libvirt's migration job and its monitor): progress into the record, the completion timeout.

    No event of its own, as in Nova, where ``compute_live_migration`` closed when the job was queued.
    The job is started before the record says ``running``, so a force-complete always finds it.
    """

    operation = "live_migration"

    def execute(self, fc: FlowContext) -> Wait | None:
        inst, values = fc.instance(), LiveMigrationValues.of(fc)
        op_id = fc.op_id(self.operation)
        # Once started, advance() below sees an abort.
        if values.transfer_started_at is None and migration_of(fc).status == MigrationStatus.CANCELLED:
            raise MigrationCancelled()
        block = values.block_migration
        fc.driver.live_migration(op_id, inst.host or "", values.destination or "", inst, block)
        now = hypervisor_now(fc)
        if values.transfer_started_at is None:
            values.transfer_started_at = now
        status = fc.driver.poll(op_id)
        progress = {k: v for k, v in status.details.items() if k.startswith(("memory_", "disk_"))}
        try:
            advance(fc, MigrationStatus.RUNNING, **progress)
        except MigrationCancelled:
            fc.driver.cancel(op_id)
            raise
        if inst.progress != status.progress:
            self.show_progress(fc, status.progress)
        if status.done:
            if status.error:
                raise StepFailed(status.error)
            return None
        self.enforce_completion_timeout(fc, values, inst, op_id, now)
        wait = fc.wait_for(status, progress=True)
        until_timeout = self.seconds_to_completion_timeout(fc, values, inst, now)
        if until_timeout is not None and until_timeout < wait.seconds:
            return Wait(until_timeout)
        return wait

    def show_progress(self, fc: FlowContext, progress: int) -> None:
        def mutate(i: Instance) -> None:
            if i.task_state == TaskState.MIGRATING:
                i.progress = progress

        fc.update_instance(mutate)

    @staticmethod
    def completion_limit(fc: FlowContext, values: LiveMigrationValues, inst: Instance) -> float | None:
        """``[libvirt] live_migration_completion_timeout`` seconds per GiB copied; None when disabled."""
        options = fc.settings.libvirt
        if not options.live_migration_completion_timeout:
            return None
        return float(options.live_migration_completion_timeout * transfer_gib(inst, values.block_migration))

    def seconds_to_completion_timeout(self, fc: FlowContext, values: LiveMigrationValues,
                                      inst: Instance, now: float) -> float | None:
        """How long until the timeout action is due (just past the limit), so a wait does not overshoot it.

        None when there is none left to take: disabled, or already forced.
        """
        limit = self.completion_limit(fc, values, inst)
        if limit is None or values.timeout_forced:
            return None
        elapsed = now - (values.transfer_started_at or 0.0)
        return max(0.0, limit - elapsed) + 0.01

    def enforce_completion_timeout(self, fc: FlowContext, values: LiveMigrationValues, inst: Instance,
                                   op_id: str, now: float) -> None:
        """``[libvirt] live_migration_completion_timeout`` seconds per GiB copied, then its timeout action."""
        options = fc.settings.libvirt
        limit = self.completion_limit(fc, values, inst)
        if limit is None:
            return
        if now - (values.transfer_started_at or 0.0) <= limit:
            return
        if options.live_migration_timeout_action == "force_complete":
            if not values.timeout_forced:
                fc.driver.live_migration_force_complete(op_id)
                values.timeout_forced = True
            return
        fc.driver.cancel(op_id)
        cancel_migration(fc)
        raise MigrationCancelled(f"Live migration not completed after {int(limit)} sec; "
                                 "aborted ([libvirt] live_migration_timeout_action = abort)")

    def revert(self, fc: FlowContext) -> None:
        fc.driver.cancel(fc.op_id(self.operation))


class PostLiveMigration(OnDestination, DriverOperation):
    """The server now runs on the destination: ``completed``, the source claim goes, host and node move.

    The record turns ``completed`` first, so an abort that arrives now finds nothing to abort.
    The claim goes before the move: until the move clears task_state ``migrating`` no other
    action can claim for the server, so the claim released is this migration's own. A rerun
    after the move finds the server off the source, or moved on by a newer migration, and
    does nothing: the task_state and the claims are no longer this migration's.
    """

    event = "compute_post_live_migration_at_destination"
    operation = "post_live_migration_at_destination"

    def execute(self, fc: FlowContext) -> Wait | None:
        advance(fc, MigrationStatus.RUNNING)
        return super().execute(fc)

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        migration = migration_of(fc)
        source = migration.source_compute
        if self.moved_on(fc, migration):
            return
        advance(fc, MigrationStatus.COMPLETED)
        dest = host_record(fc, migration.dest_compute)
        if source:
            fc.store.release_claim(source, fc.run.instance_uuid)

        def move(i: Instance) -> None:
            if i.host == source:
                i.host, i.node = dest.name, dest.node
            if i.task_state == TaskState.MIGRATING:
                i.task_state = None
            i.progress = 0

        fc.update_instance(move)

    @staticmethod
    def moved_on(fc: FlowContext, migration: Migration) -> bool:
        """The server has left the source (this move was made), or a newer migration of it began."""
        inst = fc.instance()
        return inst.host != migration.source_compute or fc.store.newest_migration_id(inst.id) != migration.id


class LiveMigrateFlow(Flow):
    name = instance_actions.LIVE_MIGRATION
    values_model = LiveMigrationValues

    def steps(self, run: FlowRun) -> list[Step]:
        before_reply = bool(run.params.get("checks_before_reply"))
        find = FindDestinationBeforeReply() if before_reply else FindDestination()
        record = RecordDestinationBeforeReply() if before_reply else RecordDestination()
        return [RestoreOnFailure(), find, record, QueueLiveMigration(), PreLiveMigration(), TransferGuest(),
                PostLiveMigration()]
