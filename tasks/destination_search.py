"""The engine's retry-over-candidates step: hosts are tried one at a time until one is accepted.

Both migrations choose their destination this way (the live one runs two checks on each
candidate, the cold one asks it to ``prep_resize``). What must not differ between them is
here: the attempt loop and its limit, the keys of the attempts' events (``step_event_key``
numbered by attempt), committing every attempt's progress under the lease, and, after a
crash, resuming at the attempt that was in progress (same number, same host, its events
reopened rather than duplicated).

Commits, the fewest that keep those: an attempt's number and host go with its first event's
opening; its other events, and the end of each check that passed, go with its rejection
(committed before its host's claim is given back) or its acceptance (with the step's end). A
crash before an attempt's first commit leaves no trace of it but what ``next_candidate`` took
(a claim), which the next start of the step gives back (``before_search``) before it tries
again from the same number; a crash after it reruns the attempt on the same host.

A subclass says where candidates come from (``next_candidate``), how one is tried
(``try_candidate``, which raises Rejected) and what a rejection or the acceptance leaves
in the run. Its flow's values model must extend :class:`DestinationSearchValues`.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import ClassVar

from compute import errors
from compute.models import ActionEvent, utcnow
from tasks.step import FlowContext, FlowValues, Step, StepFailed, failure_details


class DestinationSearchValues(FlowValues):
    """The search's own progress, saved with the flow's values."""

    attempt: int = 0  # attempts begun; the one in progress (if any) is number ``attempt``
    candidate: str | None = None  # the host being tried; kept once accepted
    destination: str | None = None  # the accepted host


class Rejected(errors.ComputeError):
    """A candidate that will not do. ``problem`` is what the check said; the message names the check."""

    def __init__(self, check: str, problem: str) -> None:
        super().__init__(f"{check} failed: {problem}")
        self.problem = problem


class Attempt:
    """One candidate's try: its number, its host, and the events recorded under it."""

    def __init__(self, fc: FlowContext, number: int, host: str, *, marks_action: bool) -> None:
        self.fc = fc
        self.number = number
        self.host = host
        self.marks_action = marks_action
        self.opened = False

    def open(self, event: str, host: str) -> ActionEvent:
        """Begin one of the attempt's events; a resumed attempt reopens it in place.

        The first is committed at once, with the attempt's number and host; the others go with
        the attempt's next commit (its rejection or its acceptance): a crash before it reruns them.
        """
        first, self.opened = not self.opened, True
        return self.fc.open_event(event, host, attempt=self.number, later=not first)

    def check(self, event: ActionEvent, check: str, call: Callable[[], None]) -> None:
        """Run ``call`` under ``event``, which ends Success, or Error with the problem and its traceback.

        An expected failure (a ComputeError) rejects the candidate; anything else still closes
        the event, then fails the step.
        """
        try:
            call()
        except errors.LeaseLost:
            raise
        except Exception as exc:
            event.finish_time, event.result = utcnow(), "Error"
            event.details, event.traceback = failure_details(exc), traceback.format_exc()
            self.fc.record_events(event, action_update={"message": "Error"} if self.marks_action else None)
            if not isinstance(exc, errors.ComputeError):
                raise
            raise Rejected(check, event.details) from exc
        event.finish_time, event.result = utcnow(), "Success"
        self.fc.record_later(event)  # with the attempt's next commit


class DestinationSearch(Step):
    """Try candidates until one is accepted, each attempt committed before and after it is tried."""

    # Nova's wrap_instance_event marks the action Error when a compute event fails, even if the
    # search then goes on to succeed; a subclass whose attempt events are such events says so.
    rejection_marks_action: ClassVar[bool] = False

    def execute(self, fc: FlowContext) -> None:
        try:
            self.search(fc)
        finally:  # what the attempt set aside, even when the step fails
            if fc.has_unrecorded_events:
                fc.record_events()

    def search(self, fc: FlowContext) -> None:
        state = DestinationSearchValues.of(fc)
        if state.destination is not None:
            return
        self.before_search(fc)
        while True:
            if state.candidate is None:
                limit = self.max_attempts(fc)
                if limit is not None and state.attempt >= limit:
                    raise self.exhausted(fc, state.attempt)
                state.candidate = self.next_candidate(fc)
                state.attempt += 1  # committed with the attempt's first event (or its rejection)
            attempt = Attempt(fc, state.attempt, state.candidate, marks_action=self.rejection_marks_action)
            try:
                self.try_candidate(fc, attempt)
            except Rejected as rejection:
                self.rejected(fc, attempt.host, rejection)
                state.candidate = None
                fc.record_events()
                self.release(fc, attempt.host)  # after the commit: a crash in between leaves it to before_search
                continue
            state.destination = attempt.host
            self.accepted(fc, attempt.host)
            return

    # ---- what a search says -----------------------------------------------------------------
    def before_search(self, fc: FlowContext) -> None:
        """Checks and tidying at every (re)start of the step, before any attempt."""

    def max_attempts(self, fc: FlowContext) -> int | None:
        """How many attempts may begin in all; None for no limit."""
        return None

    def exhausted(self, fc: FlowContext, attempts: int) -> Exception:
        """The failure once ``max_attempts`` attempts were all rejected."""
        return StepFailed(f"No destination was accepted in {attempts} attempts")

    def next_candidate(self, fc: FlowContext) -> str:
        """The next host to try (taking whatever it must hold while tried), or raise StepFailed."""
        raise NotImplementedError

    def try_candidate(self, fc: FlowContext, attempt: Attempt) -> None:
        """Try ``attempt.host`` under the attempt's events; raise Rejected if it will not do."""
        raise NotImplementedError

    def rejected(self, fc: FlowContext, host: str, rejection: Rejected) -> None:
        """Remember why ``host`` was rejected (saved with the next commit)."""

    def release(self, fc: FlowContext, host: str) -> None:
        """Give back what ``host`` held for its attempt; the rejection is already committed."""

    def accepted(self, fc: FlowContext, host: str) -> None:
        """``host`` is the destination (already in the values); record what that means."""
