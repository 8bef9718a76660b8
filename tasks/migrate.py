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

from pydantic import Field

from compute import errors, instance_actions, scheduler, telemetry
from compute.driver import OperationStatus
from compute.guards import being_deleted
from compute.models import FlowRun, Instance, Migration, utcnow
from compute.states import MigrationStatus, PowerState, TaskState, VmState
from tasks.destination_search import Attempt, DestinationSearchValues, Rejected
from tasks.instance_steps import DriverOperation
from tasks.moves import (
    ClaimingSearch,
    MoveValues,
    OnDestination,
    OnSource,
    change_server_and_migration,
    migration_of,
    move_task,
)
from tasks.step import HOST, Flow, FlowContext, InConductor, Step, StepFailed

CLAIM_BASIS = "claim_basis"  # what the scheduler read of an alternate, for its claim (this delivery only)

MIGRATE_TASK_STATES = (TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED,
                       TaskState.RESIZE_FINISH)
ATTEMPT_EVENT = "compute_prep_resize"
CANCELLED_BEFORE_COPY = "The migration was cancelled by an administrator before the copy began."


class ColdMigrationValues(DestinationSearchValues, MoveValues):
    old_vm_state: str | None = None  # to go back to on a failure, and to power on (or not) when resized
    old_power_state: int | None = None
    alternates: list[str] = Field(default_factory=list)  # the scheduler's hosts, tried in order
    rejections: dict[str, str] = Field(default_factory=dict)  # every host not taken, and why


def no_valid_host(reason: str, rejections: dict[str, str]) -> errors.NoValidHost:
    return errors.NoValidHost(scheduler.with_explanation(reason, rejections))


def stop_if_cancelled(fc: FlowContext) -> None:
    if migration_of(fc).status == MigrationStatus.CANCELLING:
        raise StepFailed(CANCELLED_BEFORE_COPY)


# ---- the steps -------------------------------------------------------------------------------
class MigrationCheckpoint(Step):
    """Remembers the state to go back to; on revert puts the server back and closes the migration."""

    def execute(self, fc: FlowContext) -> None:
        inst, values = fc.instance(), ColdMigrationValues.of(fc)
        if values.old_vm_state is None:
            values.old_vm_state, values.old_power_state = inst.vm_state, inst.power_state

    def revert(self, fc: FlowContext) -> None:
        old_vm_state = ColdMigrationValues.of(fc).old_vm_state

        def restore(inst: Instance, migration: Migration) -> None:
            if not being_deleted(inst):
                inst.vm_state = old_vm_state or inst.vm_state
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
        inst, values = fc.instance(), ColdMigrationValues.of(fc)
        selection = scheduler.select_hosts(fc.store, inst, inst.flavor, requested_host=fc.params["requested_host"],
                                           ignore_hosts=[migration_of(fc).source_compute or ""])
        telemetry.count_rejections(selection.rejections)
        rejections = dict(selection.rejections)
        if inst.host in rejections:
            rejections[inst.host] = "the server is on this host"
        if not selection.candidates:
            raise no_valid_host("There are not enough hosts available.", rejections)
        alternates = selection.candidates[: fc.settings.scheduler.max_attempts]
        for host in alternates:  # as the scheduler read them, for RecordDestination and the claims in this delivery
            fc.remember(HOST, host.name, host)
            fc.remember(CLAIM_BASIS, host.name, selection.claim_bases.get(host.name))
        values.alternates = [h.name for h in alternates]
        values.rejections = rejections


class ClaimDestination(ClaimingSearch):
    """Claim on each alternate in turn and ask it to ``prep_resize``; the first that accepts keeps its claim.

    Each try is its own ``compute_prep_resize`` event; a failed one marks the action Error,
    as in Nova, even when the next host accepts.
    """

    event = "cold_migrate"
    rejection_marks_action = True

    def before_search(self, fc: FlowContext) -> None:
        stop_if_cancelled(fc)
        super().before_search(fc)

    def max_attempts(self, fc: FlowContext) -> int:
        return len(ColdMigrationValues.of(fc).alternates)

    def exhausted(self, fc: FlowContext, attempts: int) -> Exception:
        return no_valid_host(f"Exhausted all hosts available for retrying build failures for instance "
                             f"{fc.run.instance_uuid}.", ColdMigrationValues.of(fc).rejections)

    def next_candidate(self, fc: FlowContext) -> str:
        values = ColdMigrationValues.of(fc)
        return values.alternates[values.attempt]

    def try_candidate(self, fc: FlowContext, attempt: Attempt) -> None:
        inst = fc.instance()

        def prepare() -> None:
            seen = fc.cached(CLAIM_BASIS, attempt.host, lambda: None)
            fc.store.claim_resources(attempt.host, inst.id, inst.flavor, seen=seen)
            fc.driver.prep_resize(attempt.host, inst)

        attempt.check(attempt.open(ATTEMPT_EVENT, attempt.host), "prep_resize", prepare)

    def rejected(self, fc: FlowContext, host: str, rejection: Rejected) -> None:
        ColdMigrationValues.of(fc).rejections[host] = rejection.message

    def accepted(self, fc: FlowContext, host: str) -> None:
        conductor = fc.step_event()  # closed by the runner after RecordDestination, details kept
        if conductor is not None:
            conductor.details = scheduler.explain(ColdMigrationValues.of(fc).rejections, chosen=host)
            fc.record_events(conductor)


class RecordDestination(InConductor, Step):
    """The chosen host on the migration record (dest_compute, dest_node, dest_host)."""

    event = "cold_migrate"

    def execute(self, fc: FlowContext) -> None:
        host = ColdMigrationValues.of(fc).destination
        dest = fc.host(host) if host else None

        def fill(inst: Instance, migration: Migration) -> None:
            migration.dest_compute = migration.dest_node = host
            migration.dest_host = dest.host_ip if dest else None

        change_server_and_migration(fc, fill)


class CopyDiskAndPowerOff(OnSource, DriverOperation):
    """The copy phase: from here on the migration can no longer be cancelled."""

    event = "compute_resize_instance"
    operation = "migrate_disk_and_power_off"
    shows_progress = True  # the server's progress and the migration's disk bytes

    def hosts(self, fc: FlowContext) -> tuple[str, ...]:
        migration = migration_of(fc)
        return migration.source_compute or "", migration.dest_compute or ""

    def before_start(self, fc: FlowContext) -> None:
        if migration_of(fc).status == MigrationStatus.MIGRATING:
            return  # a later poll, or a rerun after the switch was committed

        def begin(inst: Instance, migration: Migration) -> None:
            if migration.status == MigrationStatus.CANCELLING:
                raise StepFailed(CANCELLED_BEFORE_COPY)
            if migration.status != MigrationStatus.PRE_MIGRATING:
                raise StepFailed(f"Migration {migration.id} is {migration.status}; the copy cannot start")
            move_task(inst, (TaskState.RESIZE_PREP,), TaskState.RESIZE_MIGRATING)
            migration.status = MigrationStatus.MIGRATING

        change_server_and_migration(fc, begin)

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
        old_power_state = ColdMigrationValues.of(fc).old_power_state

        def power_back(inst: Instance) -> None:
            if not being_deleted(inst) and old_power_state is not None:
                inst.power_state = old_power_state

        fc.update_instance(power_back)


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


class FinishMigrationOnDestination(OnDestination, DriverOperation):
    event = "compute_finish_resize"
    operation = "finish_migration"

    def before_start(self, fc: FlowContext) -> None:
        def finishing(inst: Instance) -> None:
            move_task(inst, (TaskState.RESIZE_MIGRATED,), TaskState.RESIZE_FINISH)

        if fc.instance().task_state != TaskState.RESIZE_FINISH:
            fc.update_instance(finishing)


class MarkResized(OnDestination, Step):
    """VERIFY_RESIZE: powered on unless it was stopped before the move (Nova's old_vm_state).

    Only from post-migrating: a rerun after a crash finds the migration finished, or already
    confirmed or reverted, and leaves the server and the migration to whoever has them now.
    """

    event = "compute_finish_resize"

    def execute(self, fc: FlowContext) -> None:
        was_stopped = ColdMigrationValues.of(fc).old_vm_state == VmState.STOPPED

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
    name = instance_actions.MIGRATE
    values_model = ColdMigrationValues

    def steps(self, run: FlowRun) -> list[Step]:
        return [MigrationCheckpoint(), SelectDestinations(), ClaimDestination(), RecordDestination(),
                CopyDiskAndPowerOff(), MoveToDestination(), FinishMigrationOnDestination(), MarkResized()]
