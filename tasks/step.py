"""What a flow is made of: steps, the context they run in, and the values a run saves.

The runner (tasks/flow.py) drives these; flows (one module each under tasks/) only
subclass them. Kept apart from the runner so that a flow module reads as a list of steps.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from compute import errors
from compute.driver import HypervisorDriver, OperationStatus
from compute.models import ActionEvent, FlowRun, Host, Instance, InstanceAction
from compute.queue import Enqueuer
from compute.settings import Settings
from compute.store import Store

R = TypeVar("R")

# The kinds of record a FlowContext keeps a delivery's view of (``FlowContext.cached``).
INSTANCE, HOST = "instance", "host"


@dataclass(frozen=True)
class Wait:
    """Returned by a step that is not finished: run it again after ``seconds``.

    Steps do not choose the seconds themselves: ``FlowContext.wait_for`` wakes a step when its
    driver operation is due, ``FlowContext.backoff`` when nothing says when to look again.
    """

    seconds: float


# Where a run's saved values keep the engine's backoff of the step at the cursor (tasks/flow.py).
BACKOFF_KEY = "_backoff_seconds"


def progress_wait(progress: int, due_in: float, updates: int, min_interval: float) -> float:
    """Seconds until an operation's progress reaches its next mark, or until it is due.

    The marks are the whole percents ``ceil(100 k / updates)``, k = 1 .. updates - 1. The time to
    the next one above ``progress`` is taken from the progress reported (a whole percent, at or
    below the true fraction) and the time left, assuming steady progress, plus a millisecond:
    so it is never short of the mark, and every wake-up before the due one finds the progress
    past at least one more mark. Hence at most ``updates`` wake-ups per operation (the last at
    its due time), and, with the wait at least ``min_interval``, at most one per ``min_interval``.
    """
    if updates <= 1 or progress >= 100:
        return due_in
    marks = (math.ceil(100 * k / updates) for k in range(1, updates))
    next_mark = next((m for m in marks if m > progress), None)
    if next_mark is None or next_mark >= 100:
        return due_in
    to_mark = due_in * (next_mark - progress) / (100.0 - progress) + 0.001
    return min(due_in, max(min_interval, to_mark))


class StepFailed(errors.ComputeError):
    """A step's expected failure; ``message`` becomes the event details and the fault."""


class FlowValues(BaseModel):
    """What a flow's steps save for later steps (``run.ctx``), one model per flow.

    Assignments are validated and unknown names refused, so a misspelt value fails where it
    is written rather than reading back as missing in a later delivery.
    """

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    @classmethod
    def of(cls, fc: FlowContext) -> Self:
        """``fc.values`` as this flow's model (a step of another flow asking is a bug)."""
        if not isinstance(fc.values, cls):
            raise TypeError(f"{fc.run.flow} saves {type(fc.values).__name__}, not {cls.__name__}")
        return fc.values


def failure_details(exc: BaseException) -> str:
    """What an event says about an exception: a ComputeError's message, else only its class name."""
    return exc.message if isinstance(exc, errors.ComputeError) and exc.message else type(exc).__name__


def operation_id(request_id: str, operation: str) -> str:
    """The driver op id of one action's operation: starting it again under this id is a no-op."""
    return f"{request_id}:{operation}"


def copy_event(event: ActionEvent) -> ActionEvent:
    """A copy to change apart from the original: every field of an event is a string (or None),
    so a shallow copy is one, at a quarter of the cost of pydantic's deep one."""
    return event.model_copy()


def step_event_key(step_key: str, name: str, attempt: int = 0) -> str:
    """The one key format of the events a step records beside its own: an attempt's, a rollback's.

    The store lists events by (start_time, key); with this key they come right after the
    event of the step that made them, and in attempt order, even at equal start times.
    Attempt 0 is for an event outside any attempt.
    """
    return f"{step_key}.{attempt:02d}:{name}"


class FlowContext:
    """What a step may touch: the store, the driver, its run's saved values and the clock.

    ``event_key`` is the key of the event the current step records under (None for a step
    without one); the runner sets it before every execute and revert.
    """

    def __init__(self, store: Store, driver: HypervisorDriver, settings: Settings, run: FlowRun,
                 values: FlowValues | None = None, enqueuer: Enqueuer | None = None,
                 backoff: float | None = None, action: InstanceAction | None = None) -> None:
        self.store = store
        self.driver = driver
        self.settings = settings
        self.run = run
        self.values = values if values is not None else FlowValues()
        self.event_key: str | None = None
        self.enqueuer = enqueuer
        # The events of this run as this delivery last read or wrote them: under the lease nobody
        # else writes them, so they are read from the store at most once per delivery (``known_event``).
        self._events: dict[str, ActionEvent | None] = {}
        self._all_events_read = False
        # The last backoff wait of the step at the cursor (None: it has not backed off yet);
        # saved with the values under BACKOFF_KEY, cleared by the runner when the cursor moves.
        self.backoff_seconds = backoff
        # The records the forward steps read (kind, key -> record), as this delivery last read or
        # wrote them: see ``cached``.
        self._records: dict[tuple[str, str], Any] = {}
        # Events a step has changed but not committed yet: its next ``record_events`` writes them.
        self._unrecorded: dict[str, ActionEvent] = {}
        # The run's action record as this delivery read it and its commits rewrote it: under the
        # lease only those commits write it (``Store.commit_run``).
        self.action = action

    @property
    def params(self) -> dict[str, Any]:
        return self.run.params

    @property
    def request_id(self) -> str:
        return self.run.request_id

    # ---- the records steps read: once per delivery, then as the steps' own writes left them ----------
    def cached(self, kind: str, key: str, read: Callable[[], R | None]) -> R | None:
        """``read()``, once per delivery while the flow goes forward (a None found is not kept).

        The view is the delivery's, under its lease: a step's own writes replace it
        (``remember``), and what another process changes meanwhile is seen by the compare-and-sets,
        which always read the store, and by the next delivery. Every decision a write depends on is
        made inside its compare-and-set; what a step decides from this view (an event's host, a
        pre-check) was never atomic with the write after it. Reverts read the store every time:
        the failure they follow may be another process's change (an abort, a delete).
        The records are shared, not copied: read them, write through the store.
        """
        if self.run.phase != "forward":
            return read()
        slot = (kind, key)
        if slot in self._records:
            return self._records[slot]
        found = read()
        if found is not None:
            self._records[slot] = found
        return found

    def remember(self, kind: str, key: str, record: Any) -> None:
        """What a step just wrote (returned by its compare-and-set): the delivery's view from now on."""
        if self.run.phase == "forward":
            self._records[(kind, key)] = record

    def instance(self) -> Instance:
        """The server, as this delivery last read or wrote it (``cached``)."""
        inst = self.cached(INSTANCE, self.run.instance_uuid, lambda: self.store.get_instance(self.run.instance_uuid))
        if inst is None:
            raise errors.InstanceNotFound(self.run.instance_uuid)
        return inst

    def update_instance(self, mutate: Callable[[Instance], None]) -> Instance:
        """The server's compare-and-set (``Store.update_instance``) on this delivery's view of it when
        it has one (``known``: one round trip while nobody else wrote it); what it wrote is the view
        from now on."""
        known = self._records.get((INSTANCE, self.run.instance_uuid)) if self.run.phase == "forward" else None
        inst = self.store.update_instance(self.run.instance_uuid, mutate, known=known)
        self.remember(INSTANCE, inst.id, inst)
        return inst

    def host(self, name: str) -> Host | None:
        """A compute host's record, read once per delivery (``cached``)."""
        return self.cached(HOST, name, lambda: self.store.get_host(name))

    def op_id(self, operation: str) -> str:
        return operation_id(self.run.request_id, operation)

    def backoff(self) -> Wait:
        """Wait for what nobody says the time of: ``poll_interval_seconds`` at the step's first
        wait, twice the last one at each next, up to ``poll_backoff_max_seconds``."""
        engine = self.settings.engine
        if self.backoff_seconds is None:
            seconds = engine.poll_interval_seconds
        else:
            seconds = self.backoff_seconds * 2
        seconds = min(max(seconds, engine.poll_interval_seconds), engine.poll_backoff_max_seconds)
        self.backoff_seconds = seconds
        return Wait(seconds)

    @property
    def first_wait(self) -> bool:
        """Whether the step at the cursor has not backed off yet (it is waiting for the first time)."""
        return self.backoff_seconds is None

    def wait_for(self, status: OperationStatus, *, progress: bool = False) -> Wait:
        """The wait of a step polling an operation that is not done.

        When the driver says when it is due, the step wakes then; with ``progress``, also at the
        operation's next progress mark (``progress_wait``: at most ``[engine] progress_updates``
        wakes, at most one per ``progress_interval_seconds``). Else it backs off.
        """
        if status.due_in is None:
            return self.backoff()
        due = max(0.0, status.due_in)
        if progress:
            engine = self.settings.engine
            due = progress_wait(status.progress, due, engine.progress_updates, engine.progress_interval_seconds)
        return Wait(due)

    def nudge(self, request_id: str) -> None:
        """Deliver another action now rather than at its next wake (it is told to stop, say).

        The message carries the run's current wake number: if the run is waiting, it resumes
        at once and its own wake-up finds a newer wake (or the run finished) and drops itself;
        if it is running, this copy finds it leased, or a newer wake, and drops itself. Best
        effort: the run sees the change at its own next wake anyway.
        """
        other = self.store.get_run(request_id)
        if self.enqueuer is None or other is None or other.finished:
            return
        try:
            self.enqueuer.enqueue(request_id, other.wake, 0.0, action=other.flow, server_id=other.instance_uuid)
        except errors.QueueUnavailable:
            pass

    def poll_interval(self) -> float:
        return self.settings.engine.poll_interval_seconds

    def save_values(self) -> None:
        """Copy the typed values into the run record; every commit does this first."""
        self.run.ctx = self.values.model_dump(mode="json")
        if self.backoff_seconds is not None:
            self.run.ctx[BACKOFF_KEY] = self.backoff_seconds

    def known_event(self, key: str) -> ActionEvent | None:
        """The event ``key`` of this run as stored (a copy, to change and record).

        The first time an event this delivery has not written is asked for, all of the run's are
        read, in one round trip: under the lease nobody else writes them, so that is once per delivery.
        """
        if key not in self._events and not self._all_events_read:
            for event in self.store.list_events(self.request_id):
                self._events.setdefault(event.key, event)
            self._all_events_read = True
        found = self._events.get(key)
        return None if found is None else copy_event(found)

    def remember_events(self, events: list[ActionEvent], *, absent: tuple[str, ...] = (),
                        all_read: bool = False) -> None:
        """What was just committed (and which keys are known to have no event yet; with ``all_read``,
        that the run has no other event than those known)."""
        if all_read:
            self._all_events_read = True
        for key in absent:
            self._events.setdefault(key, None)
        for event in events:
            self._events[event.key] = copy_event(event)

    def step_event(self) -> ActionEvent | None:
        """The current step's event as stored (a step may add details to it)."""
        return self.known_event(self.event_key) if self.event_key else None

    def open_event(self, name: str, host: str | None, attempt: int = 0, *, later: bool = False) -> ActionEvent:
        """Begin (and record, or with ``later`` set aside for the next commit) an event of the current
        step's beside the runner's one.

        A step run again after a crash reopens it in place (its start time kept), so it
        shows once.
        """
        key = step_event_key(self.event_key or f"{self.run.cursor:03d}", name, attempt)
        event = self.known_event(key) or ActionEvent(key=key, event=name, host=host)
        event.finish_time = event.result = event.traceback = event.details = None
        if later:
            self.record_later(event)
        else:
            self.record_events(event)
        return event

    def record_events(self, *events: ActionEvent, action_update: dict[str, Any] | None = None) -> None:
        """Events a step writes itself, committed as the runner commits: with the run's saved
        values, and only while this worker still holds the lease. Events set aside with
        ``record_later`` go in the same commit."""
        pending = {**self._unrecorded, **{e.key: e for e in events}}
        self.save_values()
        ttl = self.settings.engine.lease_ttl_seconds
        self.store.commit_run(self.run, owner=self.run.owner, lease_ttl=ttl, due_in=ttl,
                              events=list(pending.values()), action_update=action_update, action=self.action)
        self._unrecorded.clear()
        self.remember_events(list(pending.values()))

    def record_later(self, *events: ActionEvent) -> None:
        """Events to commit with the step's next ``record_events`` (one commit for several changes).

        Only for what may be lost with the step: a crash before that commit reruns the step,
        which changes them again. A step that sets events aside records them before it returns
        (``record_events()`` with nothing new commits just those); until then ``known_event``
        answers with them as changed.
        """
        for event in events:
            self._unrecorded[event.key] = event
            self._events[event.key] = copy_event(event)

    @property
    def has_unrecorded_events(self) -> bool:
        return bool(self._unrecorded)


class Step:
    """One named, idempotent unit of a flow, with its undo beside it.

    ``event`` is the instance-action event name (Nova's ``<service>_<method>``); None
    records no event. ``execute`` returns None when done or a Wait.
    """

    event: ClassVar[str | None] = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def execute(self, fc: FlowContext) -> Wait | None:
        raise NotImplementedError

    def revert(self, fc: FlowContext) -> None:
        """Undo what ``execute`` may have done; must be safe to call again, or after nothing ran."""

    def runs_on(self, fc: FlowContext) -> str | None:
        """The host that does this step's work (its event names it): the server's, unless a mixin says."""
        return fc.instance().host

    def event_host(self, fc: FlowContext) -> str | None:
        return self.runs_on(fc) or fc.settings.host


class Checkpoint(Step):
    """Nothing to do forward; placed first, its ``revert`` is the flow's last word on a failure.

    Octavia's ``*OnRevert`` tasks: the undo of what the flow as a whole changed (a task_state
    set by the API, a server to put in ERROR), which no single step owns.
    """

    def execute(self, fc: FlowContext) -> None:
        return None


class InConductor:
    """Mixin for steps that are the conductor's work: their event names this service's host."""

    def runs_on(self, fc: FlowContext) -> str | None:
        return fc.settings.host


class Flow:
    """A named, versioned list of steps. Subclasses set ``name`` and build ``steps``.

    ``version`` goes up whenever a change would mislead a run begun under the old one: steps
    added, removed or reordered, or saved values renamed. A run remembers the version it
    began with, and the runner will not resume it under another (see FlowRunner).
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    values_model: ClassVar[type[FlowValues]] = FlowValues

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
