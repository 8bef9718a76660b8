"""The flow engine: an action is a list of small named steps whose cursor lives in Redis.

One delivery of an action runs steps until the flow ends or a step asks to wait; a wait
commits the cursor, releases the lease and re-enqueues the action with a countdown, so
no worker slot ever sleeps on a simulated (or real) hypervisor operation.

Waits cost nothing while they wait: a step polling a driver operation is woken when the
driver says it is due (``OperationStatus.due_in``), plus, for a step that shows progress,
at most ``[engine] progress_updates`` times per operation, at most one per
``progress_interval_seconds``; with no due time (a driver that cannot tell, another flow,
a lock) it backs off from ``poll_interval_seconds``, doubling, up to
``poll_backoff_max_seconds`` (``FlowContext.wait_for`` / ``backoff``; the backoff of the
step at the cursor is saved with the run's values and starts again at the next step). So
an action's deliveries are one, plus for each operation it waits for one wake-up (at most
``progress_updates`` if it shows progress), plus its backoff waits (about log2(T / 0.5 s) + T /
cap for a wait of T seconds).

A step costs one commit: its event ends, the cursor moves and the next step's event begins
in the same MULTI (the last step's also ends the run). A leading checkpoint costs none: the
delivery's opening commit moves the cursor past it (``_pass_checkpoints``).

Guarantees, and how:
- One runner at a time: a lease (``SET NX PX``, sent with the reads of the run and its
  action in one round trip) renewed at every commit; every commit checks the lease in the
  same Lua script as its writes (one round trip), so a runner that lost it writes nothing.
- Resume, not repeat: a redelivered message starts at the committed cursor. A step that
  crashed after its side effect but before its commit runs again, so every step is
  idempotent (claims keyed by host+instance, driver operations keyed by op id, state
  writes that set a target value).
- Stale messages die: each message carries the run's ``wake`` number; a wait or a reap
  bumps it, so an older copy of the message finds a mismatch and drops itself.
- Failure: the failing step's event gets ``Error`` with traceback and details, then the
  steps that ran are reverted newest first (each ``revert`` idempotent), then the action
  ends with message ``Error``. A revert that fails is recorded as an Error event of its
  own (with its traceback) and the older reverts still run. A revert interrupted by a
  crash resumes the same way.
- Only the flow a run began with resumes it: a run records its flow's ``version`` at
  its first delivery. A run found under another version (or whose saved values no longer
  fit the flow's model) is ended in error with the reason, and is *not* reverted: its
  cursor indexes steps that may no longer exist, so undoing "the steps that ran" could
  undo the wrong ones. Its open events are closed with the reason; what it changed is
  left for an operator (``os-resetState``). A run saved before versions were recorded
  counts as version 0.

What it reports (compute/telemetry.py, compute/log_context.py): every line logged during a
delivery carries the action's request id (the one its API call returned), action, server and
worker; each forward step that ends is one INFO line and one step-duration observation, timed
from the moment the step became current (saved with the run under ``STEP_STARTED_KEY``, so a
step that waited across deliveries is timed whole); a run that ends is one INFO line and one
succeeded/failed count. Waits log at DEBUG only.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from compute import errors, log_context, telemetry
from compute.driver import HypervisorDriver
from compute.models import ActionEvent, FlowRun, InstanceAction, utcnow
from compute.queue import Enqueuer
from compute.settings import Settings
from compute.store import Store
from tasks.run_reports import run_fields, seconds_since, step_fields, worker_name
from tasks.step import (
    BACKOFF_KEY,
    Checkpoint,
    Flow,
    FlowContext,
    Step,
    Wait,
    event_key,
    failure_details,
)

LOG = logging.getLogger(__name__)

# Where a run's saved values keep the epoch at which the step at the cursor became current.
STEP_STARTED_KEY = "_step_started_at"


@dataclass(frozen=True)
class Failed:
    reason: str


def revert_event_key(cursor: int) -> str:
    """The key of the event recording a failed revert of the step at ``cursor``."""
    return f"{cursor:03d}:revert"


def does_nothing_forward(step: Step) -> bool:
    """A checkpoint as :class:`Checkpoint` wrote it: no event, and an ``execute`` that does nothing."""
    return isinstance(step, Checkpoint) and step.event is None and type(step).execute is Checkpoint.execute


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class FlowRunner:
    def __init__(self, store: Store, driver: HypervisorDriver, settings: Settings,
                 enqueuer: Enqueuer, flows: dict[str, Flow]) -> None:
        self.store = store
        self.driver = driver
        self.settings = settings
        self.enqueuer = enqueuer
        self.flows = flows
        self.ttl = settings.engine.lease_ttl_seconds
        # Per delivery under way (request id ->): when the step at its cursor became current.
        self._step_started: dict[str, float] = {}

    def run(self, request_id: str, wake: int) -> str:
        """Deliver one message for ``request_id``; returns what happened (for logs and tests).

        The lease is taken with the reads of the run and its action (one round trip); a message
        for a finished run, or an older wake, gives it straight back.
        """
        owner = worker_identity()
        taken, run, action = self.store.begin_delivery(request_id, owner, self.ttl)
        if run is None or run.finished or run.wake != wake:
            if taken:
                self.store.release_lease(request_id, owner)
            if run is None or run.finished:
                LOG.debug("delivery %s of %s: already finished", wake, request_id)
                return "finished"
            LOG.debug("delivery %s of %s: stale (the run is at wake %s)", wake, request_id, run.wake)
            return "stale"
        if not taken:
            return "leased"
        with log_context.bound(request_id=request_id, action=run.flow, server_id=run.instance_uuid,
                               worker=worker_name()):
            return self._deliver(run, action, owner)

    def _ended(self, run: FlowRun, outcome: str) -> None:
        """The run ended in this delivery (``run`` as its last commit left it)."""
        result = "succeeded" if outcome == "done" else "failed"
        seconds = seconds_since(run.created_at)
        telemetry.observer().action_ended(run.flow, result, seconds)
        fields = run_fields(run, seconds, result)
        if result == "succeeded":
            LOG.info("action %s %s in %.1fs", run.flow, result, seconds, extra=fields)
        else:
            LOG.warning("action %s %s in %.1fs: %s", run.flow, result, seconds, run.error, extra=fields)

    def _deliver(self, run: FlowRun, action: InstanceAction | None, owner: str) -> str:
        """Drive ``run`` under the lease ``owner`` has just taken."""
        request_id = run.request_id
        outcome = "lease-lost"
        try:
            outcome = self._drive(run, action, owner)
            if outcome in ("done", "error"):
                self._ended(run, outcome)
            return outcome
        except errors.LeaseLost:
            LOG.warning("lost the lease on %s; another worker continues it", request_id)
            return "lease-lost"
        finally:
            self._step_started.pop(request_id, None)
            if outcome not in ("waiting", "done", "error"):  # their last commit gave the lease back
                self.store.release_lease(request_id, owner)

    # ---- the loop ---------------------------------------------------------------------
    def _drive(self, run: FlowRun, action: InstanceAction | None, owner: str) -> str:
        flow = self.flows.get(run.flow)
        first_delivery = run.deliveries == 0
        if flow is not None and run.flow_version is None and first_delivery:
            run.flow_version = flow.version
        run.deliveries += 1
        run.owner = owner
        run.status = "running"
        fc = self._context(flow, run, action)
        if isinstance(fc, str):
            return self._end_unresumable(run, action, owner, fc)
        assert flow is not None
        if first_delivery:
            # Only the runner records a run's events, and its first commit counts this delivery:
            # a run never delivered has none to read.
            fc.remember_events([], all_read=True)
        steps = flow.steps(run)
        aborting = bool(run.abort_reason) and run.phase == "forward"
        if not aborting:
            self._pass_checkpoints(fc, steps)
        self._commit(fc, owner, events=[] if aborting else self._opening(fc, steps, known=False))
        if aborting:
            assert run.abort_reason is not None
            self._abort_open_step(fc, steps, owner, run.abort_reason)
            self._fail(fc, steps, owner, run.abort_reason)
        while run.phase == "forward" and run.cursor < len(steps):
            outcome = self._forward_step(fc, steps, owner)
            if isinstance(outcome, Wait):
                return self._wait(fc, owner, outcome)
            if isinstance(outcome, Failed):
                self._fail(fc, steps, owner, outcome.reason)
        if run.phase == "revert":
            return self._revert_all(fc, steps, owner)
        if not run.finished:  # the last step's commit normally ends the run
            self._commit(fc, owner, status="done", action_update={"finish_time": utcnow()})
        return "done"

    def _opening(self, fc: FlowContext, steps: list[Step], *, known: bool) -> list[ActionEvent]:
        """The event the step at the cursor begins, if it has one not recorded yet, to commit now.

        It goes in the commit that put the cursor there (or that began the delivery), so a step
        costs one commit, not two. ``known`` says the cursor has just moved there in this
        delivery, in a commit that would have carried the event: none can be stored yet.
        """
        run = fc.run
        if run.phase != "forward" or run.cursor >= len(steps):
            return []
        key = event_key(steps, run.cursor)
        if key is None:
            return []
        if (not known or key in fc._events) and fc.known_event(key) is not None:
            return []
        step = steps[run.cursor]
        fc.event_key = key
        return [ActionEvent(key=key, event=step.event or "", host=self._host_of(step, fc))]

    def _context(self, flow: Flow | None, run: FlowRun, action: InstanceAction | None) -> FlowContext | str:
        """The run's context with its typed values, or why this flow cannot resume it."""
        if flow is None:
            return f"No flow named {run.flow!r} is installed; the action cannot resume"
        began_with = run.flow_version or 0
        if began_with != flow.version:
            return (f"The {run.flow} flow changed from version {began_with} to {flow.version} since this "
                    "action began; it cannot resume, and its steps were not reverted")
        saved = dict(run.ctx)
        backoff = saved.pop(BACKOFF_KEY, None)
        started = saved.pop(STEP_STARTED_KEY, None)
        # A run's first delivery (or one saved before steps were timed) times its step from now.
        self._step_started[run.request_id] = float(started) if isinstance(started, int | float) else time.time()
        try:
            values = flow.values_model.model_validate(saved)
        except ValidationError as exc:
            return (f"The values saved by this {run.flow} action no longer fit its flow "
                    f"({exc.error_count()} problems); it cannot resume, and its steps were not reverted")
        return FlowContext(self.store, self.driver, self.settings, run, values, enqueuer=self.enqueuer,
                           backoff=float(backoff) if isinstance(backoff, int | float) else None, action=action)

    def _end_unresumable(self, run: FlowRun, action: InstanceAction | None, owner: str, reason: str) -> str:
        """End a run no flow can resume: its open events closed with the reason, nothing reverted."""
        LOG.error("ending %s without resuming it: %s", run.request_id, reason)
        run.error = reason
        now = utcnow()
        still_open = [e for e in self.store.list_events(run.request_id) if e.finish_time is None]
        for event in still_open:
            event.finish_time, event.result, event.details = now, "Error", reason
        run.status = "error"
        self._write(run, action, owner, events=still_open, action_update={"finish_time": now, "message": "Error"})
        return "error"

    def _forward_step(self, fc: FlowContext, steps: list[Step], owner: str) -> Wait | Failed | None:
        run = fc.run
        step = steps[run.cursor]
        key = fc.event_key = event_key(steps, run.cursor)
        event = fc.known_event(key) if key else None
        if key and event is None:  # (normally opened by the commit that moved the cursor here)
            event = ActionEvent(key=key, event=step.event or "", host=self._host_of(step, fc))
            self._commit(fc, owner, events=[event])
        try:
            outcome = step.execute(fc)
        except errors.LeaseLost:
            raise
        except Exception as exc:  # a step failure of any kind ends the flow with a reason
            details = failure_details(exc)
            if not isinstance(exc, errors.ComputeError):
                LOG.exception("step %s of %s failed", step.name, run.request_id)
            LOG.warning("step %s failed: %s", step.name, details, extra=self._step_fields(run, step, "failed"))
            if key:
                event = fc.known_event(key) or event
                assert event is not None
                event.finish_time, event.result = utcnow(), "Error"
                event.traceback, event.details = traceback.format_exc(), details
                self._commit(fc, owner, events=[event], action_update={"message": "Error"})
            return Failed(details)
        if isinstance(outcome, Wait):
            LOG.debug("step %s waits %.2fs", step.name, outcome.seconds, extra=self._step_fields(run, step, "waiting"))
            return outcome
        self._step_done(fc, step)
        finished = []
        if key and event_key(steps, run.cursor) != key:
            # As last recorded: the step may have added details to its own event.
            event = fc.known_event(key) or event
            assert event is not None
            event.finish_time, event.result = utcnow(), "Success"
            finished.append(event)
        if run.cursor >= len(steps):  # the last step: its commit ends the run
            self._commit(fc, owner, events=finished, status="done", action_update={"finish_time": utcnow()})
            return None
        # One commit: this step's end, the cursor on the next, and the next one's event begun.
        self._commit(fc, owner, events=finished + self._opening(fc, steps, known=True))
        return None

    def _step_done(self, fc: FlowContext, step: Step) -> None:
        """Report the step at the cursor done and move the cursor on (the caller commits it)."""
        run = fc.run
        fields = self._step_fields(run, step, "done")
        telemetry.observer().step_finished(run.flow, step.name, fields["duration_ms"] / 1000)
        LOG.info("step %s done in %.3fs", step.name, fields["duration_ms"] / 1000, extra=fields)
        self._step_started[run.request_id] = time.time()
        run.cursor += 1
        fc.backoff_seconds = None  # the next step backs off from the start

    def _pass_checkpoints(self, fc: FlowContext, steps: list[Step]) -> None:
        """Move the cursor past the checkpoints at it, in the commit that opens the delivery.

        A checkpoint without an event does nothing forward, so a crash after that commit leaves
        the run as a crash after the checkpoint's own commit would: one commit fewer per action.
        """
        run = fc.run
        while run.phase == "forward" and run.cursor < len(steps) and does_nothing_forward(steps[run.cursor]):
            self._step_done(fc, steps[run.cursor])

    def _step_fields(self, run: FlowRun, step: Step, outcome: str) -> dict[str, Any]:
        now = time.time()
        return step_fields(run, step.name, now - self._step_started.get(run.request_id, now), outcome)

    def _host_of(self, step: Step, fc: FlowContext) -> str | None:
        try:
            return step.event_host(fc)
        except errors.ComputeError:  # the server or its migration is gone: the step will say so
            return fc.settings.host

    def _wait(self, fc: FlowContext, owner: str, wait: Wait) -> str:
        run = fc.run
        run.status = "waiting"
        run.wake += 1
        grace = max(self.ttl, self.settings.engine.start_grace_seconds)
        self._commit(fc, owner, due_in=wait.seconds + grace, release=True)
        try:
            self.enqueuer.enqueue(run.request_id, run.wake, wait.seconds, action=run.flow, server_id=run.instance_uuid)
        except errors.QueueUnavailable:
            LOG.warning("could not re-enqueue %s; the reaper will resume it", run.request_id)
        return "waiting"

    def _abort_open_step(self, fc: FlowContext, steps: list[Step], owner: str, reason: str) -> None:
        """The reaper gave up on this action: close the event left open by the lost worker."""
        run = fc.run
        if run.cursor >= len(steps):
            return
        key = event_key(steps, run.cursor)
        event = self.store.get_event(run.request_id, key) if key else None
        if event is not None and event.finish_time is None:
            event.finish_time, event.result, event.details = utcnow(), "Error", reason
            self._commit(fc, owner, events=[event])

    def _fail(self, fc: FlowContext, steps: list[Step], owner: str, reason: str) -> None:
        run = fc.run
        run.phase = "revert"
        run.error = reason
        fc.backoff_seconds = None
        run.lost_in_step = 0
        # The step at the cursor may have half-run; it is reverted too.
        run.cursor = min(run.cursor, len(steps) - 1)
        self._commit(fc, owner, action_update={"message": "Error"})

    def _revert_all(self, fc: FlowContext, steps: list[Step], owner: str) -> str:
        run = fc.run
        while run.cursor >= 0:
            step = steps[run.cursor]
            fc.event_key = event_key(steps, run.cursor)
            if run.skip_revert_of == run.cursor:
                LOG.error("skipping the revert of %s for %s: it kept killing its worker", step.name, run.request_id)
                run.error = f"{run.error}; the revert of {step.name} was skipped: its worker kept dying"
                run.skip_revert_of = None
                run.cursor -= 1
                self._commit(fc, owner)
                continue
            failed: list[ActionEvent] = []
            started = utcnow()
            try:
                step.revert(fc)
            except errors.LeaseLost:
                raise
            except Exception as exc:
                LOG.exception("revert of %s for %s failed; continuing", step.name, run.request_id)
                failed.append(ActionEvent(
                    key=revert_event_key(run.cursor), event=f"revert_{step.name}", start_time=started,
                    finish_time=utcnow(), result="Error", host=self._host_of(step, fc),
                    traceback=traceback.format_exc(), details=failure_details(exc)))
            run.cursor -= 1
            self._commit(fc, owner, events=failed)
        self._commit(fc, owner, status="error", action_update={"finish_time": utcnow(), "message": "Error"})
        return "error"

    def _commit(self, fc: FlowContext, owner: str, *, events: list[ActionEvent] | None = None,
                due_in: float | None = None, status: str | None = None,
                action_update: dict[str, Any] | None = None, release: bool = False) -> None:
        """Persist progress with the step's saved values; the reaper expects news within ``due_in``."""
        fc.save_values()
        started = self._step_started.get(fc.run.request_id)
        if started is not None and fc.run.phase == "forward" and status not in ("done", "error"):
            fc.run.ctx[STEP_STARTED_KEY] = started
        self._write(fc.run, fc.action, owner, events=events, due_in=due_in, status=status, action_update=action_update,
                    release=release)
        fc.remember_events(events or [])

    def _write(self, run: FlowRun, action: InstanceAction | None, owner: str, *, events: list[ActionEvent] | None = None,
               due_in: float | None = None, status: str | None = None,
               action_update: dict[str, Any] | None = None, release: bool = False) -> None:
        """Commit under the lease; a run's last commit (it ended, or it waits) gives the lease back."""
        if status is not None:
            run.status = status
        self.store.commit_run(
            run, owner=owner, lease_ttl=self.ttl,
            due_in=None if run.finished else (self.ttl if due_in is None else due_in),
            events=events or [], action_update=action_update, release=release or run.finished, action=action,
        )
