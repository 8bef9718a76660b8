"""The flow engine: an action is a list of small named steps whose cursor lives in Redis.

One delivery of an action runs steps until the flow ends or a step asks to wait; a wait
commits the cursor, releases the lease and re-enqueues the action with a countdown, so
no worker slot ever sleeps on a simulated (or real) hypervisor operation.

Guarantees, and how:
- One runner at a time: a lease (``SET NX PX``) renewed at every commit; every commit
  checks the lease in the same WATCH/MULTI, so a runner that lost it writes nothing.
- Resume, not repeat: a redelivered message starts at the committed cursor. A step that
  crashed after its side effect but before its commit runs again, so every step is
  idempotent (claims keyed by host+instance, driver operations keyed by op id, state
  writes that set a target value).
- Stale messages die: each message carries the run's ``wake`` number; a wait or a reap
  bumps it, so an older copy of the message finds a mismatch and drops itself.
- Failure: the failing step's event gets ``Error`` with traceback and details, then the
  steps that ran are reverted newest first (each ``revert`` idempotent), then the action
  ends with message ``Error``. A revert interrupted by a crash resumes the same way.
"""
from __future__ import annotations

import logging
import os
import socket
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from compute import errors
from compute.driver import HypervisorDriver
from compute.models import ActionEvent, FlowRun, Instance, utcnow
from compute.queue import Enqueuer
from compute.settings import Settings
from compute.store import Store

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wait:
    """Returned by a step that is not finished: run it again after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Failed:
    reason: str


class StepFailed(errors.ComputeError):
    """A step's expected failure; ``message`` becomes the event details and the fault."""


class FlowContext:
    """What a step may touch: the store, the driver, its run's saved values and the clock."""

    def __init__(self, store: Store, driver: HypervisorDriver, settings: Settings, run: FlowRun) -> None:
        self.store = store
        self.driver = driver
        self.settings = settings
        self.run = run

    @property
    def values(self) -> dict[str, Any]:
        return self.run.ctx

    @property
    def params(self) -> dict[str, Any]:
        return self.run.params

    @property
    def request_id(self) -> str:
        return self.run.request_id

    def instance(self) -> Instance:
        inst = self.store.get_instance(self.run.instance_uuid)
        if inst is None:
            raise errors.InstanceNotFound(self.run.instance_uuid)
        return inst

    def op_id(self, name: str) -> str:
        return f"{self.run.request_id}:{name}"

    def poll_interval(self) -> float:
        return self.settings.engine.poll_interval_seconds

    def record_events(self, *events: ActionEvent, action_update: dict[str, Any] | None = None) -> None:
        """Events a step writes itself (one per attempt, say), committed as the runner commits:
        with the run's saved values, and only while this worker still holds the lease."""
        ttl = self.settings.engine.lease_ttl_seconds
        self.store.commit_run(self.run, owner=self.run.owner, lease_ttl=ttl, due_in=ttl,
                              events=list(events), action_update=action_update)


class Step:
    """One named, idempotent unit of a flow, with its undo beside it.

    ``event`` is the instance-action event name (Nova's ``<service>_<method>``); None
    records no event (checkpoints). ``execute`` returns None when done or a Wait.
    """

    event: ClassVar[str | None] = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def execute(self, fc: FlowContext) -> Wait | None:
        raise NotImplementedError

    def revert(self, fc: FlowContext) -> None:
        """Undo what ``execute`` may have done; must be safe to call again, or after nothing ran."""

    def event_host(self, fc: FlowContext) -> str | None:
        return fc.instance().host or fc.settings.host


class Flow:
    """A named list of steps. Subclasses set ``name`` and build ``steps``."""

    name: ClassVar[str]

    def steps(self, run: FlowRun) -> list[Step]:
        raise NotImplementedError


def event_key(steps: list[Step], index: int) -> str | None:
    """Consecutive steps with the same event name share one event, keyed by the first of them.

    So a snapshot that is begun, polled and rotated in three steps still shows as Nova's
    single ``compute_backup_instance`` event.
    """
    if index >= len(steps) or steps[index].event is None:
        return None
    first = index
    while first > 0 and steps[first - 1].event == steps[index].event:
        first -= 1
    return f"{first:03d}:{steps[index].event}"


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

    def run(self, request_id: str, wake: int) -> str:
        """Deliver one message for ``request_id``; returns what happened (for logs and tests)."""
        run = self.store.get_run(request_id)
        if run is None or run.finished:
            return "finished"
        if run.wake != wake:
            return "stale"
        owner = worker_identity()
        if not self.store.acquire_lease(request_id, owner, self.ttl):
            return "leased"
        try:
            run = self.store.get_run(request_id)
            if run is None or run.finished or run.wake != wake:
                return "stale"
            return self._drive(run, owner)
        except errors.LeaseLost:
            LOG.warning("lost the lease on %s; another worker continues it", request_id)
            return "lease-lost"
        finally:
            self.store.release_lease(request_id, owner)

    # ---- the loop ---------------------------------------------------------------------
    def _drive(self, run: FlowRun, owner: str) -> str:
        flow = self.flows[run.flow]
        steps = flow.steps(run)
        fc = FlowContext(self.store, self.driver, self.settings, run)
        run.deliveries += 1
        run.owner = owner
        run.status = "running"
        self._commit(run, owner)
        if run.abort_reason and run.phase == "forward":
            self._abort_open_step(fc, steps, owner, run.abort_reason)
            self._fail(fc, steps, owner, run.abort_reason)
        while run.phase == "forward" and run.cursor < len(steps):
            outcome = self._forward_step(fc, steps, owner)
            if isinstance(outcome, Wait):
                return self._wait(run, owner, outcome)
            if isinstance(outcome, Failed):
                self._fail(fc, steps, owner, outcome.reason)
        if run.phase == "revert":
            return self._revert_all(fc, steps, owner)
        self._commit(run, owner, status="done", action_update={"finish_time": utcnow()})
        return "done"

    def _forward_step(self, fc: FlowContext, steps: list[Step], owner: str) -> Wait | Failed | None:
        run = fc.run
        step = steps[run.cursor]
        key = event_key(steps, run.cursor)
        event = self.store.get_event(run.request_id, key) if key else None
        if key and event is None:
            event = ActionEvent(key=key, event=step.event or "", host=self._host_of(step, fc))
            self._commit(run, owner, events=[event])
        try:
            outcome = step.execute(fc)
        except errors.LeaseLost:
            raise
        except Exception as exc:  # a step failure of any kind ends the flow with a reason
            details = exc.message if isinstance(exc, errors.ComputeError) and exc.message else type(exc).__name__
            if not isinstance(exc, errors.ComputeError):
                LOG.exception("step %s of %s failed", step.name, run.request_id)
            if event is not None:
                event.finish_time, event.result = utcnow(), "Error"
                event.traceback, event.details = traceback.format_exc(), details
                self._commit(run, owner, events=[event], action_update={"message": "Error"})
            return Failed(details)
        if isinstance(outcome, Wait):
            return outcome
        run.cursor += 1
        finished = []
        if event is not None and event_key(steps, run.cursor) != key:
            event.finish_time, event.result = utcnow(), "Success"
            finished.append(event)
        self._commit(run, owner, events=finished)
        return None

    def _host_of(self, step: Step, fc: FlowContext) -> str | None:
        try:
            return step.event_host(fc)
        except errors.InstanceNotFound:
            return fc.settings.host

    def _wait(self, run: FlowRun, owner: str, wait: Wait) -> str:
        run.status = "waiting"
        run.wake += 1
        grace = max(self.ttl, self.settings.engine.start_grace_seconds)
        self._commit(run, owner, due_in=wait.seconds + grace)
        self.store.release_lease(run.request_id, owner)
        try:
            self.enqueuer.enqueue(run.request_id, run.wake, wait.seconds)
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
            self._commit(run, owner, events=[event])

    def _fail(self, fc: FlowContext, steps: list[Step], owner: str, reason: str) -> None:
        run = fc.run
        run.phase = "revert"
        run.error = reason
        run.lost_in_step = 0
        # The step at the cursor may have half-run; it is reverted too.
        run.cursor = min(run.cursor, len(steps) - 1)
        self._commit(run, owner, action_update={"message": "Error"})

    def _revert_all(self, fc: FlowContext, steps: list[Step], owner: str) -> str:
        run = fc.run
        while run.cursor >= 0:
            step = steps[run.cursor]
            if run.skip_revert_of == run.cursor:
                LOG.error("skipping the revert of %s for %s: it kept killing its worker", step.name, run.request_id)
                run.error = f"{run.error}; the revert of {step.name} was skipped: its worker kept dying"
                run.skip_revert_of = None
                run.cursor -= 1
                self._commit(run, owner)
                continue
            try:
                step.revert(fc)
            except errors.LeaseLost:
                raise
            except Exception:
                LOG.exception("revert of %s for %s failed; continuing", step.name, run.request_id)
            run.cursor -= 1
            self._commit(run, owner)
        self._commit(run, owner, status="error", action_update={"finish_time": utcnow(), "message": "Error"})
        return "error"

    def _commit(self, run: FlowRun, owner: str, *, events: list[ActionEvent] | None = None,
                due_in: float | None = None, status: str | None = None,
                action_update: dict[str, Any] | None = None) -> None:
        """Persist progress; the reaper expects news within ``due_in`` (default: the lease)."""
        if status is not None:
            run.status = status
        self.store.commit_run(
            run, owner=owner, lease_ttl=self.ttl,
            due_in=None if run.finished else (self.ttl if due_in is None else due_in),
            events=events or [], action_update=action_update,
        )


def fail_instance(fc: FlowContext, reason: str) -> None:
    """Put the server in ERROR with a fault, as Nova does when a build or delete fails.

    A server deleted meanwhile (a delete accepted during its build) stays deleted."""
    def mutate(inst: Instance) -> None:
        if inst.deleted:
            return
        inst.vm_state = "error"
        inst.task_state = None
        inst.fault = {"code": 500, "message": reason, "created": utcnow()}

    fc.store.update_instance(fc.run.instance_uuid, mutate)
