"""os-migrateLive: find and check a destination, then pre-migrate, copy, post-migrate.

Mirrors nova/conductor/tasks/live_migrate.py (``_execute``, ``_find_destination``) and the
compute manager's ``live_migration`` / ``pre_live_migration`` / ``_post_live_migration`` /
``_rollback_live_migration``. The migration record moves accepted -> queued -> preparing ->
running -> completed; the server keeps its vm_state with task_state ``migrating`` throughout.

Events, in Nova's names: the conductor's (``conductor_live_migrate_instance``, or
``conductor_migrate_server`` below 2.34) spans choosing the destination; inside it, every
destination tried gets its own ``compute_check_can_live_migrate_destination`` and
``..._source`` events with that host, written by the step itself because the runner keys one
event per step. The conductor event's details tell an admin every candidate and why it was
not taken (the filter, or the check that failed). Then ``compute_live_migration``,
``compute_pre_live_migration``, ``compute_post_live_migration_at_destination``, or on a
failure after pre-migration began, ``compute_rollback_live_migration_at_destination``.

Claims: the server keeps its claim on the source and gains one on the destination; the
source claim is released when the server has moved. Every revert leaves claims where the
server is. The copy is polled by re-enqueued deliveries (Wait), never by a sleeping worker.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from compute import errors, scheduler
from compute.driver import OperationStatus
from compute.live_migration import (
    ACCEPTED,
    CANCELLED,
    COMPLETED,
    ERROR,
    FAILED,
    PREPARING,
    PROGRESSION,
    QUEUED,
    RUNNING,
    block_migration_for,
    destination_filters,
    disk_problem,
    explain,
    forced_destination_problem,
    public_reason,
    shares_storage,
    transfer_gib,
    with_explanation,
)
from compute.models import ActionEvent, FlowRun, Host, Instance, Migration, utcnow
from compute.states import PowerState, TaskState
from tasks.flow import Flow, FlowContext, Step, StepFailed, Wait, event_key
from tasks.instance_steps import DriverOperation

CONDUCTOR_EVENT = "conductor_live_migrate_instance"
CONDUCTOR_EVENT_BEFORE_REPLY = "conductor_migrate_server"
CHECK_DESTINATION = "compute_check_can_live_migrate_destination"
CHECK_SOURCE = "compute_check_can_live_migrate_source"
ROLLBACK_AT_DESTINATION = "compute_rollback_live_migration_at_destination"
CANCELLED_MESSAGE = "Migration operation was cancelled"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
POWER_STATE_NAMES = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}


class MigrationCancelled(StepFailed):
    def __init__(self, message: str = CANCELLED_MESSAGE) -> None:
        super().__init__(message)


# ---- the migration record --------------------------------------------------------------------------
def migration_id(fc: FlowContext) -> int:
    if "migration_id" not in fc.values:
        found = fc.store.get_migration_by_uuid(fc.params["migration_uuid"])
        if found is None:
            raise StepFailed(f"Migration {fc.params['migration_uuid']} could not be found.")
        fc.values["migration_id"] = found.id
    return int(fc.values["migration_id"])


def load_migration(fc: FlowContext) -> Migration:
    found = fc.store.get_migration(migration_id(fc))
    if found is None:
        raise StepFailed(f"Migration {migration_id(fc)} could not be found.")
    return found


def ensure_not_deleted(fc: FlowContext) -> Instance:
    """A server being deleted takes its claims with it; the migration stops rather than claim for it."""
    inst = fc.instance()
    if inst.deleted or inst.task_state == TaskState.DELETING:
        raise StepFailed(f"Instance {inst.id} is being deleted")
    return inst


def advance(fc: FlowContext, status: str, **fields: Any) -> Migration:
    """Move the record forward to ``status`` (a rerun finds it there); an abort's ``cancelled`` stops the flow."""
    ensure_not_deleted(fc)

    def mutate(m: Migration) -> None:
        if m.status == CANCELLED:
            raise MigrationCancelled()
        if m.status not in PROGRESSION:
            raise StepFailed(f"Migration {m.id} is {m.status}")
        if PROGRESSION.index(m.status) < PROGRESSION.index(status):
            m.status = status
        for name, value in fields.items():
            setattr(m, name, value)

    return fc.store.update_migration(migration_id(fc), mutate)


def cancel_migration(fc: FlowContext) -> None:
    def mutate(m: Migration) -> None:
        if m.status != COMPLETED:
            m.status = CANCELLED

    fc.store.update_migration(migration_id(fc), mutate)


def host_record(fc: FlowContext, name: str | None) -> Host:
    host = fc.store.get_host(name) if name else None
    if host is None:
        raise StepFailed(f"Compute host {name} could not be found.")
    return host


def destination(fc: FlowContext) -> str:
    return str(fc.values["destination"])


def hypervisor_now(fc: FlowContext) -> float:
    """The clock the copy is timed on: the hypervisor's (the simulated fleet keeps one tests can move)."""
    clock = getattr(fc.driver, "clock", None)
    return float(clock.now()) if clock is not None else time.time()


def open_event(fc: FlowContext, key: str, name: str, host: str) -> ActionEvent:
    """The event under ``key``, started afresh when a resumed step repeats it."""
    event = fc.store.get_event(fc.request_id, key) or ActionEvent(key=key, event=name, host=host)
    event.finish_time = event.result = event.traceback = event.details = None
    return event


def close_event(event: ActionEvent, error: str | None = None) -> ActionEvent:
    event.finish_time = utcnow()
    event.result = "Error" if error else "Success"
    event.details = error
    return event


# ---- steps -------------------------------------------------------------------------------------
class RestoreOnFailure(Step):
    """No effect forward. On revert: task_state cleared (vm_state kept, as Nova's ``_set_vm_state``) and
    the migration ended ``error`` or ``failed`` by where it broke; an abort's ``cancelled`` stays."""

    def execute(self, fc: FlowContext) -> None:
        return None

    def revert(self, fc: FlowContext) -> None:
        record = fc.store.get_migration_by_uuid(fc.params["migration_uuid"])
        cancelled = record is not None and record.status == CANCELLED
        reason = public_reason(fc.run.error or "Live migration failed")

        def restore(inst: Instance) -> None:
            if inst.task_state == TaskState.MIGRATING:
                inst.task_state = None
                inst.progress = 0
                if not cancelled:
                    inst.fault = {"code": 500, "message": reason, "created": utcnow()}

        fc.store.update_instance(fc.run.instance_uuid, restore)
        if record is None:
            return
        # A migration abandoned by the reaper ends ``error``, as Nova's _reset_live_migration leaves it.
        status = ERROR if fc.run.abort_reason else fc.values.get("failure_status", ERROR)

        def conclude(m: Migration) -> None:
            if m.status not in (CANCELLED, COMPLETED):
                m.status = status

        fc.store.update_migration(record.id, conclude)


class FindDestination(Step):
    """Source up, server running or paused, then destinations tried one by one until one passes its checks.

    A forced host is the only candidate (Nova 5a); otherwise the scheduler filters and weighs,
    and the best host is claimed atomically. A host failing a check loses its claim, joins the
    attempted hosts and the next one is tried, up to ``[conductor] migrate_max_retries``.
    Progress is committed at each attempt, so a worker dying here is resumed where it was.
    """

    event: ClassVar[str | None] = CONDUCTOR_EVENT

    def event_host(self, fc: FlowContext) -> str | None:
        return fc.settings.host

    def execute(self, fc: FlowContext) -> None:
        if fc.values.get("destination"):
            return
        inst = ensure_not_deleted(fc)
        source = host_record(fc, load_migration(fc).source_compute)
        if not source.up or source.forced_down:
            raise StepFailed(f"Compute service of {source.name} is unavailable at this time.")
        if inst.power_state not in (PowerState.RUNNING, PowerState.PAUSED):
            raise StepFailed(f"Instance {inst.id} in power_state {POWER_STATE_NAMES.get(inst.power_state)}. "
                             "Cannot live migrate while the instance is in this state.")
        self.release_unrecorded_claims(fc, inst)
        while True:
            candidate = fc.values.get("candidate") or self.claim_next(fc, inst, source)
            failed = self.check(fc, inst, source, host_record(fc, candidate))
            if failed is None:
                break
            self.give_up_on(fc, inst, candidate, *failed)
        rejections = {h: why for h, why in fc.values.get("rejections", {}).items() if h != candidate}
        fc.values["destination"] = candidate
        conductor = fc.store.get_event(fc.request_id, self.conductor_key(fc))
        if conductor is not None:
            conductor.details = explain(rejections, chosen=candidate)
            fc.record_events(conductor)

    def conductor_key(self, fc: FlowContext) -> str:
        return str(event_key(LiveMigrateFlow().steps(fc.run), fc.run.cursor))

    def release_unrecorded_claims(self, fc: FlowContext, inst: Instance) -> None:
        """A worker that died between a claim and its commit left a claim nobody knows of."""
        keep = {inst.host, fc.values.get("candidate")}
        for host in fc.store.hosts_claimed_by(inst.id) - keep:
            fc.store.release_claim(host, inst.id)

    def claim_next(self, fc: FlowContext, inst: Instance, source: Host) -> str:
        ensure_not_deleted(fc)
        if fc.params.get("force"):
            chosen = self.claim_forced(fc, inst, source)
        else:
            attempted: dict[str, str] = fc.values.setdefault("attempted", {})
            retries, limit = len(attempted), fc.settings.conductor.migrate_max_retries
            if limit != -1 and retries > limit:
                raise StepFailed(with_explanation(
                    f"Exceeded maximum number of retries. Exceeded max scheduling retries {retries} for "
                    f"instance {inst.id} during live migration", fc.values.get("rejections", {})))
            selection = scheduler.select_hosts(fc.store, inst, inst.flavor, requested_host=fc.params.get("host"),
                                               extra_filters=destination_filters(source, attempted))
            try:
                chosen = scheduler.claim_first_fit(fc.store, inst.id, inst.flavor, selection).name
            except errors.NoValidHost:
                raise StepFailed(with_explanation(NO_VALID_HOST, selection.rejections)) from None
            finally:
                fc.values["rejections"] = selection.rejections
        fc.values["candidate"] = chosen
        fc.values["attempt"] = int(fc.values.get("attempt", 0)) + 1
        fc.record_events(open_event(fc, self.attempt_key(fc, CHECK_DESTINATION), CHECK_DESTINATION, chosen))
        return chosen

    def claim_forced(self, fc: FlowContext, inst: Instance, source: Host) -> str:
        """Nova skips the scheduler for a forced host: its own checks, one claim, one try."""
        if fc.values.get("forced_problem"):
            raise StepFailed(fc.values["forced_problem"])
        dest = host_record(fc, fc.params.get("host"))
        problem = forced_destination_problem(source, dest, inst, fc.store.get_usage(dest.name))
        if problem:
            raise StepFailed(problem)
        try:
            fc.store.claim_resources(dest.name, inst.id, inst.flavor)
        except errors.InsufficientResources:
            raise StepFailed(f"Migration pre-check error: Unable to move instance {inst.id} to host "
                             f"{dest.name}. There is not enough capacity on the host for the instance.") from None
        return dest.name

    def attempt_key(self, fc: FlowContext, name: str) -> str:
        return f"{fc.run.cursor:03d}.{int(fc.values['attempt']):02d}:{name}"

    def check(self, fc: FlowContext, inst: Instance, source: Host, dest: Host) -> tuple[str, str] | None:
        """check_can_live_migrate_destination, then _source: None when both pass, else (check, problem)."""
        requested = fc.params.get("block_migration")
        dest_event = open_event(fc, self.attempt_key(fc, CHECK_DESTINATION), CHECK_DESTINATION, dest.name)
        guess = requested if requested is not None else not shares_storage(source, dest, inst)
        failed = self.under_event(
            fc, dest_event, lambda: fc.driver.check_can_live_migrate_destination(dest.name, inst, guess))
        if failed:
            return failed
        source_event = open_event(fc, self.attempt_key(fc, CHECK_SOURCE), CHECK_SOURCE, source.name)
        fc.record_events(close_event(dest_event), source_event)

        def source_checks() -> None:
            block = block_migration_for(source, dest, inst, requested)
            over_commit = fc.params.get("disk_over_commit")
            if block and over_commit is not None:
                too_small = disk_problem(dest, fc.store.get_usage(dest.name), inst, over_commit)
                if too_small:
                    raise errors.Invalid(too_small)
            fc.driver.check_can_live_migrate_source(source.name, dest.name, inst, block)
            fc.values["block_migration"] = block

        failed = self.under_event(fc, source_event, source_checks)
        if not failed:
            fc.record_events(close_event(source_event))
        return failed

    def under_event(self, fc: FlowContext, event: ActionEvent,
                    check: Callable[[], None]) -> tuple[str, str] | None:
        """Run one check under its own event: None, or (its event name, the problem it reports).
        Anything unexpected still closes the event (Error, the class name) and then fails the step."""
        try:
            check()
        except errors.LeaseLost:
            raise
        except Exception as exc:
            expected = isinstance(exc, errors.ComputeError)
            detail = exc.message if expected and exc.message else type(exc).__name__
            fc.record_events(close_event(event, detail))
            if not expected:
                raise
            return event.event, detail
        return None

    def give_up_on(self, fc: FlowContext, inst: Instance, host: str, check: str, problem: str) -> None:
        """Record first, release after: a crash in between leaves a claim the resumed step releases.

        A forced host was the only candidate, so its problem is the migration's, in the check's words.
        """
        reason = f"{check} failed: {problem}"
        fc.values.setdefault("attempted", {})[host] = reason
        fc.values.setdefault("rejections", {})[host] = reason
        fc.values["candidate"] = None
        forced = bool(fc.params.get("force"))
        if forced:
            fc.values["forced_problem"] = problem
        fc.record_events()
        fc.store.release_claim(host, inst.id)
        if forced:
            raise StepFailed(problem)

    def revert(self, fc: FlowContext) -> None:
        """Claims follow the server: whatever it holds away from its current host is given back."""
        inst = fc.instance()
        keep = set() if inst.deleted or inst.task_state == TaskState.DELETING else {inst.host}
        for host in fc.store.hosts_claimed_by(inst.id) - keep:
            fc.store.release_claim(host, inst.id)


class RecordDestination(Step):
    """The conductor's last act before the cast: the destination on the migration record.

    It shares the conductor's event, so the event closes here, keeping FindDestination's details.
    """

    event: ClassVar[str | None] = CONDUCTOR_EVENT

    def event_host(self, fc: FlowContext) -> str | None:
        return fc.settings.host

    def execute(self, fc: FlowContext) -> None:
        inst, dest = fc.instance(), host_record(fc, destination(fc))
        advance(fc, ACCEPTED, source_node=inst.node, dest_compute=dest.name, dest_node=dest.node,
                dest_host=dest.host_ip)


class FindDestinationBeforeReply(FindDestination):
    event = CONDUCTOR_EVENT_BEFORE_REPLY


class RecordDestinationBeforeReply(RecordDestination):
    event = CONDUCTOR_EVENT_BEFORE_REPLY


class QueueLiveMigration(Step):
    """The source compute accepts the job (its event closes at once, as Nova's does)."""

    event: ClassVar[str | None] = "compute_live_migration"

    def execute(self, fc: FlowContext) -> None:
        advance(fc, QUEUED)


class OnDestination(DriverOperation):
    def target_host(self, fc: FlowContext) -> str:
        return destination(fc)

    def event_host(self, fc: FlowContext) -> str | None:
        return destination(fc)


class PreLiveMigration(OnDestination):
    """Plug the server's networking and disks on the destination; from here a failure ends ``failed``."""

    event: ClassVar[str | None] = "compute_pre_live_migration"
    operation = "pre_live_migration"

    def execute(self, fc: FlowContext) -> Wait | None:
        fc.values["failure_status"] = FAILED
        advance(fc, PREPARING)
        fc.values["destination_touched"] = True
        return super().execute(fc)

    def revert(self, fc: FlowContext) -> None:
        """Nova's rollback_live_migration_at_destination; it is not waited for, its outcome is recorded."""
        super().revert(fc)
        if not fc.values.get("destination_touched"):
            return
        dest = destination(fc)
        op_id = fc.op_id("rollback_live_migration_at_destination")
        key = f"{fc.run.cursor:03d}:{ROLLBACK_AT_DESTINATION}"
        event = fc.store.get_event(fc.request_id, key) or ActionEvent(
            key=key, event=ROLLBACK_AT_DESTINATION, host=dest)
        try:
            fc.driver.rollback_live_migration_at_destination(op_id, dest, fc.instance())
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

    def op_id(self, fc: FlowContext) -> str:
        return fc.op_id(self.operation)

    def execute(self, fc: FlowContext) -> Wait | None:
        inst = fc.instance()
        op_id = self.op_id(fc)
        if load_migration(fc).status == CANCELLED:
            raise MigrationCancelled()
        block = bool(fc.values.get("block_migration"))
        fc.driver.live_migration(op_id, inst.host or "", destination(fc), inst, block)
        fc.values.setdefault("transfer_started_at", hypervisor_now(fc))
        status = fc.driver.poll(op_id)
        progress = {k: v for k, v in status.details.items() if k.startswith(("memory_", "disk_"))}
        try:
            advance(fc, RUNNING, **progress)
        except MigrationCancelled:
            fc.driver.cancel(op_id)
            raise
        if inst.progress != status.progress:
            self.show_progress(fc, status.progress)
        if status.done:
            if status.error:
                raise StepFailed(status.error)
            return None
        self.enforce_completion_timeout(fc, inst, op_id, block)
        return Wait(fc.poll_interval())

    def show_progress(self, fc: FlowContext, progress: int) -> None:
        def mutate(i: Instance) -> None:
            if i.task_state == TaskState.MIGRATING:
                i.progress = progress

        fc.store.update_instance(fc.run.instance_uuid, mutate)

    def enforce_completion_timeout(self, fc: FlowContext, inst: Instance, op_id: str, block: bool) -> None:
        """``[libvirt] live_migration_completion_timeout`` seconds per GiB copied, then its timeout action."""
        options = fc.settings.libvirt
        if not options.live_migration_completion_timeout:
            return
        limit = options.live_migration_completion_timeout * transfer_gib(inst, block)
        if hypervisor_now(fc) - float(fc.values["transfer_started_at"]) <= limit:
            return
        if options.live_migration_timeout_action == "force_complete":
            if not fc.values.get("timeout_forced"):
                fc.driver.live_migration_force_complete(op_id)
                fc.values["timeout_forced"] = True
            return
        fc.driver.cancel(op_id)
        cancel_migration(fc)
        raise MigrationCancelled(f"Live migration not completed after {int(limit)} sec; "
                                 "aborted ([libvirt] live_migration_timeout_action = abort)")

    def revert(self, fc: FlowContext) -> None:
        fc.driver.cancel(self.op_id(fc))


class PostLiveMigration(OnDestination):
    """The server now runs on the destination: ``completed``, the source claim goes, host and node move.

    The record turns ``completed`` first, so an abort that arrives now finds nothing to abort.
    The claim goes before the move: until the move clears task_state ``migrating`` no other
    action can claim for the server, so the claim released is this migration's own. A rerun
    after the move finds the server off the source, or moved on by a newer migration, and
    does nothing: the task_state and the claims are no longer this migration's.
    """

    event: ClassVar[str | None] = "compute_post_live_migration_at_destination"
    operation = "post_live_migration_at_destination"

    def execute(self, fc: FlowContext) -> Wait | None:
        advance(fc, RUNNING)
        return super().execute(fc)

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        source = load_migration(fc).source_compute
        if self.moved_on(fc, source):
            return
        advance(fc, COMPLETED)
        dest = host_record(fc, destination(fc))
        if source:
            fc.store.release_claim(source, fc.run.instance_uuid)

        def move(i: Instance) -> None:
            if i.host == source:
                i.host, i.node = dest.name, dest.node
                if i.availability_zone is not None:
                    i.availability_zone = dest.availability_zone
            if i.task_state == TaskState.MIGRATING:
                i.task_state = None
            i.progress = 0

        fc.store.update_instance(fc.run.instance_uuid, move)

    @staticmethod
    def moved_on(fc: FlowContext, source: str | None) -> bool:
        """The server has left the source (this move was made), or a newer migration of it began."""
        inst = fc.instance()
        newest = fc.store.list_migrations(inst.id)[0]
        return inst.host != source or newest.id != migration_id(fc)


class LiveMigrateFlow(Flow):
    name = "live_migrate"

    def steps(self, run: FlowRun) -> list[Step]:
        before_reply = bool(run.params.get("checks_before_reply"))
        find = FindDestinationBeforeReply() if before_reply else FindDestination()
        record = RecordDestinationBeforeReply() if before_reply else RecordDestination()
        return [RestoreOnFailure(), find, record, QueueLiveMigration(), PreLiveMigration(), TransferGuest(),
                PostLiveMigration()]
