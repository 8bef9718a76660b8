"""The engine's guarantees: duplicates run once, crashes resume, stale runs are reaped."""
from __future__ import annotations

import time

import pytest

from compute import errors
from compute.actions.change_password import change_password
from compute.actions.create_server import create_server
from compute.states import VmState
from tests.support.contexts import demo_ctx
from tests.support.crash import SimulatedCrash, crash_every_time, crash_once_after
from tests.support.engine import Engine


def test_duplicate_message__runs_the_flow_once(engine: Engine) -> None:
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="1", image_id=None)
    engine.queue.enqueue(ctx.request_id, 0)
    outcomes = engine.drain()
    assert outcomes.count("done") == 1
    assert engine.fleet.operation_count("spawn") == 1
    assert [e.event for e in engine.store.list_events(ctx.request_id)] == ["compute__do_build_and_run_instance"]
    assert engine.store.get_instance(inst.id).vm_state == VmState.ACTIVE


def test_stale_wake__is_dropped(engine: Engine) -> None:
    ctx = demo_ctx()
    create_server(engine.service, ctx, name="vm", flavor_id="1", image_id=None)
    engine.runner.run(*engine.queue.pop())
    assert engine.store.get_run(ctx.request_id).status == "waiting"
    assert engine.runner.run(ctx.request_id, 0) == "stale"


def test_leased_action__is_left_to_its_owner(engine: Engine) -> None:
    ctx = demo_ctx()
    create_server(engine.service, ctx, name="vm", flavor_id="1", image_id=None)
    assert engine.store.acquire_lease(ctx.request_id, "someone-else", 30)
    assert engine.runner.run(ctx.request_id, 0) == "leased"
    assert engine.store.get_run(ctx.request_id).deliveries == 0


def test_crash_after_claim__resumes_with_one_claim(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=None)
    crash_once_after(monkeypatch, type(engine.store), "claim_resources")
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.reaper.sweep(now=time.time() + 3600) == [ctx.request_id]
    engine.drain()
    inst = engine.store.get_instance(inst.id)
    assert inst.vm_state == VmState.ACTIVE
    assert engine.store.hosts_claimed_by(inst.id) == {inst.host}
    total = sum(engine.store.get_usage(h.name).memory_mb_used for h in engine.store.list_hosts())
    assert total == 2048
    assert engine.fleet.operation_count("spawn") == 1
    assert engine.store.get_run(ctx.request_id).reaps == 1


def test_crash_after_driver_start__does_not_start_twice(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    ctx = demo_ctx()
    change_password(engine.service, ctx, inst, "pw")
    crash_once_after(monkeypatch, type(engine.fleet), "set_admin_password")
    with pytest.raises(SimulatedCrash):
        engine.drain()
    engine.reaper.sweep(now=time.time() + 3600)
    engine.drain()
    assert engine.fleet.operation_count("set_admin_password") == 1
    assert engine.store.get_instance(inst.id).task_state is None
    assert [e.result for e in engine.store.list_events(ctx.request_id)] == ["Success"]


def test_reaper__gives_up_after_max_reaps_and_rolls_back(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that takes its worker down every time (think OOM) is abandoned, not retried for ever."""
    crash_every_time(monkeypatch, type(engine.fleet), "spawn")
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=None)
    engine.crash_until_abandoned(ctx.request_id)
    run = engine.store.get_run(ctx.request_id)
    assert run.status == "error" and "stopped responding 4 times" in run.error
    inst = engine.store.get_instance(inst.id)
    assert inst.vm_state == VmState.ERROR and inst.host is None
    assert sum(engine.store.get_usage(h.name).running_vms for h in engine.store.list_hosts()) == 0
    spawn_event = [e for e in engine.store.list_events(ctx.request_id) if e.event == "compute__do_build_and_run_instance"]
    assert spawn_event[0].result == "Error" and "stopped responding" in spawn_event[0].details


def test_reaper__resumes_a_late_waiting_action_without_counting_it(engine: Engine) -> None:
    """A wake-up message stuck in a backlog is not a crash: the action is resumed, never abandoned."""
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=None)
    engine.runner.run(*engine.queue.pop())
    later = time.time()
    for _ in range(engine.settings.engine.max_reaps + 2):
        engine.queue.pending.clear()
        later += 3600
        assert engine.reaper.sweep(now=later) == [ctx.request_id]
    engine.drain()
    run = engine.store.get_run(ctx.request_id)
    assert (run.status, run.lost_in_step, run.abort_reason) == ("done", 0, None)
    assert engine.store.get_instance(inst.id).vm_state == VmState.ACTIVE


def test_reaper__requeues_an_accepted_action_that_never_started(engine: Engine) -> None:
    ctx = demo_ctx()
    create_server(engine.service, ctx, name="vm", flavor_id="1", image_id=None)
    engine.queue.pending.clear()  # the message was lost
    assert engine.reaper.sweep(now=time.time() + 1) == []  # within the start grace
    assert engine.reaper.sweep(now=time.time() + 3600) == [ctx.request_id]
    engine.drain()
    assert engine.store.get_run(ctx.request_id).status == "done"


def test_reaper__two_sweeps_claim_once(engine: Engine) -> None:
    ctx = demo_ctx()
    create_server(engine.service, ctx, name="vm", flavor_id="1", image_id=None)
    engine.queue.pending.clear()
    now = time.time() + 3600
    assert engine.reaper.sweep(now=now) == [ctx.request_id]
    assert engine.reaper.sweep(now=now) == []


def test_queue_refusal__undoes_the_state_change_and_the_action(engine: Engine) -> None:
    inst = engine.boot()
    engine.queue.enqueue = lambda *a, **k: (_ for _ in ()).throw(errors.QueueUnavailable("down"))  # type: ignore[method-assign]
    ctx = demo_ctx()
    with pytest.raises(errors.QueueUnavailable):
        change_password(engine.service, ctx, inst, "pw")
    after = engine.store.get_instance(inst.id)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    assert engine.store.get_action(ctx.request_id) is None
    assert engine.store.get_run(ctx.request_id) is None


def test_reaper__a_revert_that_keeps_killing_its_worker_is_skipped_and_the_action_ends(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.create_server import ScheduleAndClaim

    engine.fleet.add_fault("spawn", mode="fail", message="no disk")
    crash_every_time(monkeypatch, ScheduleAndClaim, "revert")
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=None)
    engine.crash_until_abandoned(ctx.request_id)
    run = engine.store.get_run(ctx.request_id)
    assert run.status == "error" and "revert of ScheduleAndClaim was skipped" in run.error
    assert engine.store.get_instance(inst.id).vm_state == VmState.ERROR  # the checkpoint's revert still ran
    assert engine.store.get_action(ctx.request_id).finish_time is not None
