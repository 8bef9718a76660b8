"""The engine's building blocks on small made-up flows: checkpoints, the destination search,
typed run values, flow versions, and failed reverts.

The test flows set ``name`` on the instance, not the class, so tasks.registry.all_flows()
never picks them up; each is installed only in this test's runner.
"""
from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest
from pydantic import Field, ValidationError

from compute import errors
from compute.models import FlowRun
from tasks.change_password import ClearPasswordTaskOnRevert
from tasks.confirm_resize import ConfirmCheckpoint
from tasks.create_backup import ClearTaskStateOnRevert
from tasks.create_server import BuildCheckpoint
from tasks.delete_server import DeleteCheckpoint
from tasks.destination_search import (
    Attempt,
    DestinationSearch,
    DestinationSearchValues,
    Rejected,
)
from tasks.live_migrate import RestoreOnFailure
from tasks.revert_resize import RevertCheckpoint
from tasks.step import (
    Checkpoint,
    Flow,
    FlowContext,
    FlowValues,
    Step,
    StepFailed,
    Wait,
    step_event_key,
)
from tests.support.contexts import admin_ctx
from tests.support.crash import SimulatedCrash
from tests.support.engine import Engine

TRY_EVENT = "test_try_host"


class MadeUpFlow(Flow):
    """A flow of the given steps, installed under ``name`` in one runner only."""

    def __init__(self, name: str, steps: list[Step], values: type[FlowValues] = FlowValues,
                 version: int = 1) -> None:
        self.name = name  # type: ignore[misc]
        self.version = version  # type: ignore[misc]
        self.values_model = values  # type: ignore[misc]
        self._steps = steps

    def steps(self, run: FlowRun) -> list[Step]:
        return self._steps


def start(engine: Engine, flow: MadeUpFlow, **params: Any) -> str:
    """Accept an action of ``flow`` on a fresh server; returns its request id."""
    engine.runner.flows[flow.name] = flow
    inst = engine.boot()
    ctx = admin_ctx()
    engine.service.start_action(ctx, inst.id, flow.name, lambda i: None, params=params)
    return ctx.request_id


def events(engine: Engine, request_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(e.event, e.result, e.host) for e in engine.store.list_events(request_id)]


def server_host(engine: Engine, request_id: str) -> str | None:
    return engine.store.get_instance(engine.store.get_run(request_id).instance_uuid).host


class Noting(Step):
    """Does nothing; notes its reverts in ``log``."""

    def __init__(self, log: list[str], label: str, event: str | None = None) -> None:
        self.log, self.label = log, label
        self.event = event  # type: ignore[misc]

    def execute(self, fc: FlowContext) -> None:
        return None

    def revert(self, fc: FlowContext) -> None:
        self.log.append(f"revert {self.label}")


class Failing(Step):
    event: ClassVar[str | None] = "test_failing"

    def execute(self, fc: FlowContext) -> None:
        raise StepFailed("the step broke")


# ---- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize("step", [RestoreOnFailure, ConfirmCheckpoint, RevertCheckpoint, ClearTaskStateOnRevert,
                                  ClearPasswordTaskOnRevert, BuildCheckpoint, DeleteCheckpoint])
def test_checkpoints__only_give_a_revert(step: type[Step]) -> None:
    assert issubclass(step, Checkpoint)
    assert step.execute is Checkpoint.execute and step.revert is not Step.revert and step.event is None


def test_checkpoint__records_no_event_and_its_revert_is_the_last_word(engine: Engine) -> None:
    log: list[str] = []

    class NotedCheckpoint(Checkpoint):
        def revert(self, fc: FlowContext) -> None:
            log.append("revert checkpoint")

    rid = start(engine, MadeUpFlow("checkpointed", [NotedCheckpoint(), Noting(log, "middle"), Failing()]))
    engine.drain()
    assert log == ["revert middle", "revert checkpoint"]
    assert events(engine, rid) == [("test_failing", "Error", server_host(engine, rid))]


# ---- the destination search ----------------------------------------------------------------------
class SearchValues(DestinationSearchValues):
    rejections: dict[str, str] = Field(default_factory=dict)


class HostSearch(DestinationSearch):
    """Candidates are ``params["hosts"]`` in order; those in ``params["bad"]`` fail their try."""

    event: ClassVar[str | None] = "test_search"

    def __init__(self, released: list[str], crash_on: set[str] | None = None) -> None:
        self.released = released
        self.crash_on = crash_on if crash_on is not None else set()

    def max_attempts(self, fc: FlowContext) -> int | None:
        return fc.params.get("max")

    def exhausted(self, fc: FlowContext, attempts: int) -> Exception:
        return StepFailed(f"gave up after {attempts}: {sorted(SearchValues.of(fc).rejections)}")

    def next_candidate(self, fc: FlowContext) -> str:
        values, hosts = SearchValues.of(fc), fc.params["hosts"]
        if values.attempt >= len(hosts):
            raise StepFailed("no host left")
        return hosts[values.attempt]

    def try_candidate(self, fc: FlowContext, attempt: Attempt) -> None:
        event = attempt.open(TRY_EVENT, attempt.host)

        def try_it() -> None:
            if attempt.host in self.crash_on:
                self.crash_on.discard(attempt.host)
                raise SimulatedCrash(f"killed while trying {attempt.host}")
            if attempt.host in fc.params["bad"]:
                raise errors.Invalid(f"{attempt.host} says no")

        attempt.check(event, "try", try_it)

    def rejected(self, fc: FlowContext, host: str, rejection: Rejected) -> None:
        SearchValues.of(fc).rejections[host] = rejection.message

    def release(self, fc: FlowContext, host: str) -> None:
        self.released.append(host)

    def accepted(self, fc: FlowContext, host: str) -> None:
        event = fc.step_event()
        assert event is not None
        event.details = f"chose {host}"
        fc.record_events(event)


def search_flow(search: HostSearch) -> MadeUpFlow:
    return MadeUpFlow("search", [search, Noting([], "after", event="test_search")], values=SearchValues)


def attempt_keys(engine: Engine, request_id: str) -> list[str]:
    return [e.key for e in engine.store.list_events(request_id) if e.event == TRY_EVENT]


def test_search__rejected_candidates_then_the_accepted_one_each_under_its_own_event(engine: Engine) -> None:
    released: list[str] = []
    rid = start(engine, search_flow(HostSearch(released)), hosts=["a", "b", "c", "d"], bad=["a", "b"], max=None)
    engine.drain()

    run = engine.store.get_run(rid)
    assert run.status == "done"
    assert [(e[0], e[1]) for e in events(engine, rid)] == [
        ("test_search", "Success"), (TRY_EVENT, "Error"), (TRY_EVENT, "Error"), (TRY_EVENT, "Success")]
    assert [e[2] for e in events(engine, rid)][1:] == ["a", "b", "c"]
    assert attempt_keys(engine, rid) == [step_event_key("000:test_search", TRY_EVENT, n) for n in (1, 2, 3)]
    search_event, first_try = engine.store.list_events(rid)[:2]
    assert search_event.details == "chose c"  # kept when the runner closed the shared event
    assert first_try.details == "a says no" and "Invalid: a says no" in first_try.traceback
    assert released == ["a", "b"]
    assert run.ctx == {"attempt": 3, "candidate": "c", "destination": "c",
                       "rejections": {"a": "try failed: a says no", "b": "try failed: b says no"}}
    assert engine.store.get_action(rid).message is None  # rejections do not mark this search's action


def test_search__a_rejection_marks_the_action_when_the_search_says_so(engine: Engine) -> None:
    class MarkingSearch(HostSearch):
        rejection_marks_action = True

    rid = start(engine, search_flow(MarkingSearch([])), hosts=["a", "b"], bad=["a"], max=None)
    engine.drain()
    assert engine.store.get_run(rid).status == "done"
    assert engine.store.get_action(rid).message == "Error"


def test_search__stops_after_max_attempts_with_the_reasons(engine: Engine) -> None:
    released: list[str] = []
    rid = start(engine, search_flow(HostSearch(released)), hosts=["a", "b", "c"], bad=["a", "b", "c"], max=2)
    engine.drain()

    run = engine.store.get_run(rid)
    assert (run.status, run.error) == ("error", "gave up after 2: ['a', 'b']")
    assert events(engine, rid) == [("test_search", "Error", server_host(engine, rid)), (TRY_EVENT, "Error", "a"),
                                   (TRY_EVENT, "Error", "b")]
    assert released == ["a", "b"]


def test_search__a_crash_mid_attempt_resumes_that_attempt_in_place(engine: Engine) -> None:
    released: list[str] = []
    search = HostSearch(released, crash_on={"b"})
    rid = start(engine, search_flow(search), hosts=["a", "b", "c"], bad=["a"], max=None)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    interrupted = engine.store.get_run(rid)
    assert (interrupted.ctx["attempt"], interrupted.ctx["candidate"]) == (2, "b")
    assert [(e.host, e.result) for e in engine.store.list_events(rid) if e.event == TRY_EVENT] == [
        ("a", "Error"), ("b", None)]

    assert engine.reaper.sweep(now=time.time() + 3600) == [rid]
    engine.drain()
    run = engine.store.get_run(rid)
    assert (run.status, run.ctx["attempt"], run.ctx["destination"]) == ("done", 2, "b")
    assert [(e.host, e.result) for e in engine.store.list_events(rid) if e.event == TRY_EVENT] == [
        ("a", "Error"), ("b", "Success")]  # b tried again under its own event, c never tried
    assert attempt_keys(engine, rid) == [step_event_key("000:test_search", TRY_EVENT, n) for n in (1, 2)]
    assert released == ["a"]


def test_search__an_unexpected_error_closes_the_attempt_event_and_fails_the_step(engine: Engine) -> None:
    class Broken(HostSearch):
        def try_candidate(self, fc: FlowContext, attempt: Attempt) -> None:
            attempt.check(attempt.open(TRY_EVENT, attempt.host), "try", lambda: 1 / 0)

    rid = start(engine, search_flow(Broken([])), hosts=["a", "b"], bad=[], max=None)
    engine.drain()
    assert engine.store.get_run(rid).error == "ZeroDivisionError"
    assert events(engine, rid) == [("test_search", "Error", server_host(engine, rid)), (TRY_EVENT, "Error", "a")]


# ---- typed values --------------------------------------------------------------------------------
class TypedValues(FlowValues):
    count: int = 0
    hosts: list[str] = Field(default_factory=list)
    reasons: dict[str, str] = Field(default_factory=dict)
    chosen: str | None = None


class WriteValues(Step):
    def execute(self, fc: FlowContext) -> Wait | None:
        values = TypedValues.of(fc)
        if values.count:
            return None
        values.count, values.chosen = 2, "b"
        values.hosts.append("a")
        values.reasons["a"] = "full"
        return Wait(1.0)  # the next delivery reads them back from Redis


class ReadValues(Step):
    seen: ClassVar[list[TypedValues]] = []

    def execute(self, fc: FlowContext) -> None:
        self.seen.append(TypedValues.of(fc).model_copy(deep=True))


def test_values__round_trip_typed_through_the_run_record(engine: Engine) -> None:
    ReadValues.seen.clear()
    rid = start(engine, MadeUpFlow("typed", [WriteValues(), ReadValues()], values=TypedValues))
    assert engine.drain() == ["waiting", "done"]
    assert ReadValues.seen == [TypedValues(count=2, hosts=["a"], reasons={"a": "full"}, chosen="b")]
    assert engine.store.get_run(rid).ctx == {"count": 2, "hosts": ["a"], "reasons": {"a": "full"}, "chosen": "b"}


def test_values__assignments_are_checked_and_belong_to_one_flow() -> None:
    values = TypedValues()
    with pytest.raises(ValidationError):
        values.count = "many"  # type: ignore[assignment]
    with pytest.raises(ValidationError, match="no attribute 'misspelt'"):
        values.misspelt = 1  # type: ignore[attr-defined]
    fc = FlowContext(None, None, None, FlowRun(request_id="r", flow="typed", instance_uuid="i"),  # type: ignore[arg-type]
                     values)
    assert TypedValues.of(fc) is values
    with pytest.raises(TypeError, match="typed saves TypedValues, not SearchValues"):
        SearchValues.of(fc)


# ---- flow versions -------------------------------------------------------------------------------
class WaitOnce(Step):
    event: ClassVar[str | None] = "test_wait_once"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def execute(self, fc: FlowContext) -> Wait | None:
        if fc.run.deliveries == 1:
            return Wait(1.0)
        return None

    def revert(self, fc: FlowContext) -> None:
        self.log.append("reverted")


def test_version__stamped_at_the_first_delivery(engine: Engine) -> None:
    rid = start(engine, MadeUpFlow("versioned", [WaitOnce([])], version=3))
    assert engine.store.get_run(rid).flow_version is None
    engine.drain()
    run = engine.store.get_run(rid)
    assert (run.status, run.flow_version) == ("done", 3)


def test_version__a_changed_flow_ends_the_run_with_the_reason_and_reverts_nothing(engine: Engine) -> None:
    log: list[str] = []
    rid = start(engine, MadeUpFlow("versioned", [Noting(log, "first"), WaitOnce(log)]))
    assert engine.runner.run(*engine.queue.pop()) == "waiting"
    engine.runner.flows["versioned"] = MadeUpFlow("versioned", [WaitOnce(log)], version=2)
    assert engine.drain() == ["error"]

    run = engine.store.get_run(rid)
    assert run.status == "error"
    assert run.error == ("The versioned flow changed from version 1 to 2 since this action began; "
                         "it cannot resume, and its steps were not reverted")
    assert log == []
    [event] = engine.store.list_events(rid)
    assert (event.event, event.result, event.details) == ("test_wait_once", "Error", run.error)
    action = engine.store.get_action(rid)
    assert action.message == "Error" and action.finish_time


def test_version__a_run_from_before_versions_counts_as_version_0(engine: Engine) -> None:
    rid = start(engine, MadeUpFlow("versioned", [WaitOnce([])]))
    assert engine.runner.run(*engine.queue.pop()) == "waiting"
    engine.store.commit_run(engine.store.get_run(rid).model_copy(update={"flow_version": None}),
                            owner=None, lease_ttl=30, due_in=30)
    engine.drain()
    assert "changed from version 0 to 1" in engine.store.get_run(rid).error


def test_version__values_that_no_longer_fit_end_the_run(engine: Engine) -> None:
    rid = start(engine, MadeUpFlow("typed", [WaitOnce([])], values=TypedValues))
    assert engine.runner.run(*engine.queue.pop()) == "waiting"
    engine.store.commit_run(engine.store.get_run(rid).model_copy(update={"ctx": {"dest": "a"}}),
                            owner=None, lease_ttl=30, due_in=30)
    engine.drain()
    run = engine.store.get_run(rid)
    assert run.status == "error" and "no longer fit its flow" in run.error


# ---- failed reverts ------------------------------------------------------------------------------
class RevertBreaks(Noting):
    def revert(self, fc: FlowContext) -> None:
        super().revert(fc)
        raise errors.DriverError("the host refused the undo")


def test_failed_revert__is_an_error_event_with_its_traceback_and_the_older_reverts_still_run(
        engine: Engine) -> None:
    log: list[str] = []
    steps = [Noting(log, "oldest"), RevertBreaks(log, "breaks"), Noting(log, "newest"), Failing()]
    rid = start(engine, MadeUpFlow("unrevertable", steps))
    engine.drain()

    assert log == ["revert newest", "revert breaks", "revert oldest"]
    run = engine.store.get_run(rid)
    assert (run.status, run.error) == ("error", "the step broke")
    failed, revert = engine.store.list_events(rid)
    assert (failed.event, failed.result) == ("test_failing", "Error")
    assert (revert.event, revert.result, revert.details) == ("revert_RevertBreaks", "Error",
                                                               "the host refused the undo")
    assert "DriverError: the host refused the undo" in revert.traceback and revert.finish_time
    assert revert.host == server_host(engine, rid)
    assert engine.store.get_action(rid).message == "Error"
