"""Cold migration (nova/conductor/tasks/migrate.py, compute manager ``prep_resize``,
``resize_instance``, ``finish_resize``): the server ends on another host in VERIFY_RESIZE.

  step                            event                     task_state         migration
  MigrationCheckpoint             -                         resize_prep        pre-migrating
  SelectDestinations              conductor_migrate_server
  ClaimDestination                cold_migrate (+ one compute_prep_resize per host tried)
  RecordDestination               (same event)
  CopyDiskAndPowerOff             compute_resize_instance   resize_migrating   migrating
  MoveToDestination               (same event)              resize_migrated    post-migrating
  FinishMigrationOnDestination    compute_finish_resize     resize_finish
  MarkResized                     (same event)              None, vm resized   finished

The scheduler returns a primary host and alternates, ``[scheduler] max_attempts`` in
all; a host whose claim or ``prep_resize`` fails is released and the next is tried, each
try its own ``compute_prep_resize`` event (Error ones carry the reason, and the action's
message becomes Error, as in Nova). A requested host gets one try. Both claims are held
until confirm or revert.

On any failure the steps are undone newest first and the server is back on its source
in its original vm_state and power state, with only its source claim; the migration
ends error, or cancelled when an admin cancelled it before the copy began. (Nova puts
the server in ERROR when the copy or the finish fails; here the source disk is kept
until confirm, so going back is always possible.)
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import ClassVar

from compute import errors, scheduler
from compute.cold_migration import (
    MigrationStatus,
    get_migration,
    update_server_and_migration,
)
from compute.driver import OperationStatus
from compute.models import ActionEvent, FlowRun, Instance, Migration, utcnow
from compute.states import PowerState, TaskState, VmState
from tasks.flow import Flow, FlowContext, Step, StepFailed, Wait, event_key

MIGRATE_TASK_STATES = (TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED,
                       TaskState.RESIZE_FINISH)
ATTEMPT_EVENT = "compute_prep_resize"


# ---- helpers the three cold-migration flows share --------------------------------------------
def migration_of(fc: FlowContext) -> Migration:
    return get_migration(fc.store, fc.params["migration_uuid"])


def change_server_and_migration(fc: FlowContext, change: Callable[[Instance, Migration], None]) -> Migration:
    return update_server_and_migration(fc.store, fc.run.instance_uuid, fc.params["migration_uuid"], change)


def move_task(inst: Instance, expected: tuple[str | None, ...], new: str | None) -> None:
    """Move task_state only from what this flow put there; a rerun finds it already moved."""
    if inst.task_state == new:
        return
    if inst.task_state not in expected:
        raise StepFailed(f"Instance {inst.id} is now in task_state {inst.task_state}; the move stops")
    inst.task_state = new


def being_deleted(inst: Instance) -> bool:
    return inst.deleted or inst.task_state == TaskState.DELETING


def op_succeeded(fc: FlowContext, operation: str) -> bool:
    status = fc.driver.poll(fc.op_id(operation))
    return status.done and status.error is None


class MoveOperation(Step):
    """A driver operation of a move, started once under a fixed op id and polled.

    Like tasks.instance_steps.DriverOperation, but the driver calls of a move name the
    source and the destination, which the migration record knows.
    """

    operation: ClassVar[str]

    def start(self, fc: FlowContext, op_id: str, migration: Migration, inst: Instance) -> None:
        raise NotImplementedError

    def before_start(self, fc: FlowContext) -> None:
        """The state change that announces the operation; must be idempotent."""

    def on_progress(self, fc: FlowContext, status: OperationStatus) -> None:
        """Record progress between polls."""

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        """Record the effect; runs again if the commit after it is lost."""

    def execute(self, fc: FlowContext) -> Wait | None:
        self.before_start(fc)
        op_id = fc.op_id(self.operation)
        self.start(fc, op_id, migration_of(fc), fc.instance())
        status = fc.driver.poll(op_id)
        if not status.done:
            self.on_progress(fc, status)
            return Wait(fc.poll_interval())
        if status.error:
            raise StepFailed(status.error)
        self.on_done(fc, status)
        return None

    def revert(self, fc: FlowContext) -> None:
        """Cancel only what still runs: a finished operation stays visible as finished."""
        op_id = fc.op_id(self.operation)
        if not fc.driver.poll(op_id).done:
            fc.driver.cancel(op_id)


class OnSource:
    def event_host(self, fc: FlowContext) -> str | None:
        return migration_of(fc).source_compute or fc.settings.host


class OnDestination:
    def event_host(self, fc: FlowContext) -> str | None:
        return migration_of(fc).dest_compute or fc.settings.host


class InConductor:
    def event_host(self, fc: FlowContext) -> str | None:
        return fc.settings.host


def record_attempt(fc: FlowContext, attempt: int, host: str, started: str,
                   failure: BaseException | None = None, also: ActionEvent | None = None) -> None:
    """One ``compute_prep_resize`` event per host tried, committed under the lease with the
    run's values (so a resumed step neither repeats nor loses a try)."""
    event = ActionEvent(key=f"{fc.run.cursor:03d}:{ATTEMPT_EVENT}:{attempt:02d}", event=ATTEMPT_EVENT,
                        start_time=started, finish_time=utcnow(), host=host, result="Success")
    update = None
    if failure is not None:
        event.result = "Error"
        event.details = getattr(failure, "message", "") or type(failure).__name__
        event.traceback = "".join(traceback.format_exception(failure))
        update = {"message": "Error"}
    fc.record_events(event, *([also] if also else []), action_update=update)


def explain(rejections: dict[str, str], chosen: str | None = None) -> str:
    """For admins (event details), worded as the live migration's: each host not taken, and why."""
    head = f"Chose {chosen}. " if chosen else ""
    if not rejections:
        return f"{head}No other host was considered"
    return f"{head}Rejected: {scheduler.Selection(candidates=[], rejections=rejections).explain()}"


def no_valid_host(reason: str, rejections: dict[str, str]) -> errors.NoValidHost:
    return errors.NoValidHost(f"{reason}\n{explain(rejections)}")


def stop_if_cancelled(fc: FlowContext) -> None:
    if migration_of(fc).status == MigrationStatus.CANCELLING:
        raise StepFailed("The migration was cancelled by an administrator before the copy began.")


# ---- the steps -------------------------------------------------------------------------------
class MigrationCheckpoint(Step):
    """Remembers the state to go back to; on revert puts the server back and closes the migration."""

    def execute(self, fc: FlowContext) -> None:
        inst = fc.instance()
        fc.values.setdefault("old_vm_state", inst.vm_state)
        fc.values.setdefault("old_power_state", inst.power_state)

    def revert(self, fc: FlowContext) -> None:
        def restore(inst: Instance, migration: Migration) -> None:
            if not being_deleted(inst):
                inst.vm_state = fc.values.get("old_vm_state", inst.vm_state)
                if inst.task_state in MIGRATE_TASK_STATES:
                    inst.task_state = None
                inst.progress = 0
            if migration.status == MigrationStatus.CANCELLING:
                migration.status = MigrationStatus.CANCELLED
            elif migration.status not in (MigrationStatus.CANCELLED, MigrationStatus.ERROR):
                migration.status = MigrationStatus.ERROR

        change_server_and_migration(fc, restore)


class SelectDestinations(InConductor, Step):
    """The scheduler's answer: a primary host and alternates, kept in the run for the claims."""

    event = "conductor_migrate_server"

    def execute(self, fc: FlowContext) -> None:
        stop_if_cancelled(fc)
        inst = fc.instance()
        selection = scheduler.select_hosts(fc.store, inst, inst.flavor, requested_host=fc.params["requested_host"],
                                           ignore_hosts=[migration_of(fc).source_compute or ""])
        rejections = dict(selection.rejections)
        if inst.host in rejections:
            rejections[inst.host] = "the server is on this host"
        if not selection.candidates:
            raise no_valid_host("There are not enough hosts available.", rejections)
        fc.values["alternates"] = [h.name for h in selection.candidates[: fc.settings.scheduler.max_attempts]]
        fc.values["rejections"] = rejections


class ClaimDestination(InConductor, Step):
    """Claim on each host in turn and ask it to ``prep_resize``; the first that accepts keeps its claim.

    Each try is committed with its event (and its claim released first when it failed),
    so a worker dying here is resumed at the host it was trying, and no claim is left
    that the run does not know of.
    """

    event = "cold_migrate"

    def execute(self, fc: FlowContext) -> None:
        if fc.values.get("dest"):
            return None
        stop_if_cancelled(fc)
        inst = fc.instance()
        alternates: list[str] = fc.values["alternates"]
        rejections: dict[str, str] = fc.values["rejections"]
        while (attempt := fc.values.get("attempt", 0)) < len(alternates):
            host, started = alternates[attempt], utcnow()
            try:
                fc.store.claim_resources(host, inst.id, inst.flavor)
                fc.driver.prep_resize(host, inst)
            except errors.ComputeError as exc:
                fc.store.release_claim(host, inst.id)
                rejections[host] = f"prep_resize failed: {exc.message or type(exc).__name__}"
                fc.values["attempt"] = attempt + 1
                record_attempt(fc, attempt, host, started, failure=exc)
                continue
            fc.values["dest"] = host
            conductor = fc.store.get_event(fc.request_id, str(event_key(MigrateFlow().steps(fc.run), fc.run.cursor)))
            if conductor is not None:  # closed by the runner after RecordDestination, details kept
                conductor.details = explain(rejections, chosen=host)
            record_attempt(fc, attempt, host, started, also=conductor)
            return None
        raise no_valid_host(f"Exhausted all hosts available for retrying build failures for instance {inst.id}.",
                            rejections)

    def revert(self, fc: FlowContext) -> None:
        source = migration_of(fc).source_compute
        for host in fc.store.hosts_claimed_by(fc.run.instance_uuid) - {source}:
            fc.store.release_claim(host, fc.run.instance_uuid)


class RecordDestination(InConductor, Step):
    """The chosen host on the migration record (dest_compute, dest_node, dest_host)."""

    event = "cold_migrate"

    def execute(self, fc: FlowContext) -> None:
        host = fc.values["dest"]
        dest = fc.store.get_host(host)

        def fill(inst: Instance, migration: Migration) -> None:
            migration.dest_compute = migration.dest_node = host
            migration.dest_host = dest.host_ip if dest else None

        change_server_and_migration(fc, fill)


class CopyDiskAndPowerOff(OnSource, MoveOperation):
    """The copy phase: from here on the migration can no longer be cancelled."""

    event = "compute_resize_instance"
    operation = "migrate_disk_and_power_off"

    def before_start(self, fc: FlowContext) -> None:
        if migration_of(fc).status == MigrationStatus.MIGRATING:
            return  # a later poll, or a rerun after the switch was committed

        def begin(inst: Instance, migration: Migration) -> None:
            if migration.status == MigrationStatus.CANCELLING:
                raise StepFailed("The migration was cancelled by an administrator before the copy began.")
            if migration.status != MigrationStatus.PRE_MIGRATING:
                raise StepFailed(f"Migration {migration.id} is {migration.status}; the copy cannot start")
            move_task(inst, (TaskState.RESIZE_PREP,), TaskState.RESIZE_MIGRATING)
            migration.status = MigrationStatus.MIGRATING

        change_server_and_migration(fc, begin)

    def start(self, fc: FlowContext, op_id: str, migration: Migration, inst: Instance) -> None:
        fc.driver.migrate_disk_and_power_off(op_id, migration.source_compute or "", migration.dest_compute or "",
                                             inst)

    def _record_progress(self, fc: FlowContext, status: OperationStatus, power_off: bool) -> None:
        def progress(inst: Instance, migration: Migration) -> None:
            inst.progress = status.progress
            if power_off:
                inst.power_state = PowerState.SHUTDOWN
            for key in ("disk_total_bytes", "disk_processed_bytes", "disk_remaining_bytes"):
                if key in status.details:
                    setattr(migration, key, int(status.details[key]))

        change_server_and_migration(fc, progress)

    def on_progress(self, fc: FlowContext, status: OperationStatus) -> None:
        self._record_progress(fc, status, power_off=False)

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        self._record_progress(fc, status, power_off=True)

    def revert(self, fc: FlowContext) -> None:
        super().revert(fc)

        def power_back(inst: Instance) -> None:
            if not being_deleted(inst):
                inst.power_state = fc.values.get("old_power_state", inst.power_state)

        fc.store.update_instance(fc.run.instance_uuid, power_back)


class MoveToDestination(OnSource, Step):
    """The disk is on the destination: the server's host is the destination from now on."""

    event = "compute_resize_instance"

    def execute(self, fc: FlowContext) -> None:
        def move(inst: Instance, migration: Migration) -> None:
            move_task(inst, (TaskState.RESIZE_MIGRATING,), TaskState.RESIZE_MIGRATED)
            inst.host, inst.node = migration.dest_compute, migration.dest_node
            migration.status = MigrationStatus.POST_MIGRATING

        change_server_and_migration(fc, move)

    def revert(self, fc: FlowContext) -> None:
        def move_back(inst: Instance, migration: Migration) -> None:
            if inst.host == migration.dest_compute and not being_deleted(inst):
                inst.host, inst.node = migration.source_compute, migration.source_node

        change_server_and_migration(fc, move_back)


class FinishMigrationOnDestination(OnDestination, MoveOperation):
    event = "compute_finish_resize"
    operation = "finish_migration"

    def before_start(self, fc: FlowContext) -> None:
        def finishing(inst: Instance) -> None:
            move_task(inst, (TaskState.RESIZE_MIGRATED,), TaskState.RESIZE_FINISH)

        if fc.instance().task_state != TaskState.RESIZE_FINISH:
            fc.store.update_instance(fc.run.instance_uuid, finishing)

    def start(self, fc: FlowContext, op_id: str, migration: Migration, inst: Instance) -> None:
        fc.driver.finish_migration(op_id, migration.dest_compute or "", inst)


class MarkResized(OnDestination, Step):
    """VERIFY_RESIZE: powered on unless it was stopped before the move (Nova's old_vm_state).

    Only from post-migrating: a rerun after a crash finds the migration finished, or already
    confirmed or reverted, and leaves the server and the migration to whoever has them now.
    """

    event = "compute_finish_resize"

    def execute(self, fc: FlowContext) -> None:
        was_stopped = fc.values.get("old_vm_state") == VmState.STOPPED

        def resized(inst: Instance, migration: Migration) -> None:
            if migration.status != MigrationStatus.POST_MIGRATING:
                return
            move_task(inst, (TaskState.RESIZE_FINISH,), None)
            inst.vm_state = VmState.RESIZED
            inst.power_state = PowerState.SHUTDOWN if was_stopped else PowerState.RUNNING
            inst.progress = 100
            inst.launched_at = utcnow()
            migration.status = MigrationStatus.FINISHED

        change_server_and_migration(fc, resized)


class MigrateFlow(Flow):
    name = "migrate"

    def steps(self, run: FlowRun) -> list[Step]:
        return [MigrationCheckpoint(), SelectDestinations(), ClaimDestination(), RecordDestination(),
                CopyDiskAndPowerOff(), MoveToDestination(), FinishMigrationOnDestination(), MarkResized()]
