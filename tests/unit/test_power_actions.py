"""os-stop, os-start, pause, unpause, suspend, resume on the in-memory engine (real flows, fakeredis).

Each is accepted with its task_state, runs one driver operation on the server's host, then
changes vm_state and power_state together; on a failure the server is left as Nova's manager
leaves it (tasks/power_steps.py).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from compute import errors
from compute.actions import (
    create_backup,
    delete_server,
    pause,
    reset_state,
    resume,
    start,
    stop,
    suspend,
    unpause,
)
from compute.context import RequestContext
from compute.models import Instance
from compute.states import PowerState, TaskState, VmState, server_status
from tasks.power_steps import MarkPowerState
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.crash import SimulatedCrash, crash_once_after, crash_once_before
from tests.support.engine import Engine

Call = Callable[[Any, RequestContext, Instance], Instance]

# action -> (call, vm_state it starts from, task_state while it runs, driver operation, event,
#            vm_state after, power_state after, status after)
POWER: dict[str, tuple[Call, str, str, str, str, str, int, str]] = {
    "stop": (stop.stop, VmState.ACTIVE, TaskState.POWERING_OFF, "power_off", "compute_stop_instance",
             VmState.STOPPED, PowerState.SHUTDOWN, "SHUTOFF"),
    "start": (start.start, VmState.STOPPED, TaskState.POWERING_ON, "power_on", "compute_start_instance",
              VmState.ACTIVE, PowerState.RUNNING, "ACTIVE"),
    "pause": (pause.pause, VmState.ACTIVE, TaskState.PAUSING, "pause", "compute_pause_instance",
              VmState.PAUSED, PowerState.PAUSED, "PAUSED"),
    "unpause": (unpause.unpause, VmState.PAUSED, TaskState.UNPAUSING, "unpause", "compute_unpause_instance",
                VmState.ACTIVE, PowerState.RUNNING, "ACTIVE"),
    "suspend": (suspend.suspend, VmState.ACTIVE, TaskState.SUSPENDING, "suspend", "compute_suspend_instance",
                VmState.SUSPENDED, PowerState.SUSPENDED, "SUSPENDED"),
    "resume": (resume.resume, VmState.SUSPENDED, TaskState.RESUMING, "resume", "compute_resume_instance",
               VmState.ACTIVE, PowerState.RUNNING, "ACTIVE"),
}
# Power state a server has in each vm_state it may start from (as the flows leave it).
POWER_OF = {VmState.ACTIVE: PowerState.RUNNING, VmState.STOPPED: PowerState.SHUTDOWN,
            VmState.PAUSED: PowerState.PAUSED, VmState.SUSPENDED: PowerState.SUSPENDED}


def server(engine: Engine, inst: Instance) -> Instance:
    found = engine.store.get_instance(inst.id)
    assert found is not None
    return found


def set_fields(engine: Engine, inst: Instance, **changes: Any) -> Instance:
    def mutate(i: Instance) -> None:
        for key, value in changes.items():
            setattr(i, key, value)

    return engine.store.update_instance(inst.id, mutate)


def booted_in(engine: Engine, vm_state: str) -> Instance:
    inst = engine.boot()
    return set_fields(engine, inst, vm_state=vm_state, power_state=POWER_OF[vm_state])


def events(engine: Engine, ctx: RequestContext) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(e.event, e.result, e.host, e.details) for e in engine.store.list_events(ctx.request_id)]


# ---- the happy path, one per action ----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(POWER))
def test_power__accepted_with_its_task_state_then_done_with_nova_states(engine: Engine, name: str) -> None:
    call, before, task, operation, event, after, power, status = POWER[name]
    inst = booted_in(engine, before)
    ctx = demo_ctx()
    accepted = call(engine.service, ctx, inst)
    assert (accepted.vm_state, accepted.task_state) == (before, task)
    action = engine.store.get_action(ctx.request_id)
    assert (action.action, action.instance_uuid, action.user_id, action.finish_time) == (name, inst.id, "demo", None)

    engine.drain()
    done = server(engine, inst)
    assert (done.vm_state, done.task_state, done.power_state) == (after, None, power)
    assert server_status(done.vm_state, done.task_state) == status
    assert events(engine, ctx) == [(event, "Success", inst.host, None)]
    finished = engine.store.get_action(ctx.request_id)
    assert finished.finish_time is not None and finished.message is None
    assert [op["host"] for op in engine.fleet.operations(operation)] == [inst.host]


def test_power__stop_start_pause_unpause_suspend_resume_in_turn(engine: Engine) -> None:
    inst = engine.boot()
    seen = []
    for name in ("stop", "start", "pause", "unpause", "suspend", "resume"):
        POWER[name][0](engine.service, demo_ctx(), server(engine, inst))
        engine.drain()
        now = server(engine, inst)
        seen.append((name, server_status(now.vm_state, now.task_state), now.power_state))
    assert seen == [("stop", "SHUTOFF", 4), ("start", "ACTIVE", 1), ("pause", "PAUSED", 3),
                    ("unpause", "ACTIVE", 1), ("suspend", "SUSPENDED", 7), ("resume", "ACTIVE", 1)]
    assert [a.action for a in engine.store.list_actions(inst.id)] == [
        "resume", "suspend", "unpause", "pause", "start", "stop", "create"]


def test_stop__an_errored_server_is_stopped_and_progress_reset(engine: Engine) -> None:
    inst = set_fields(engine, engine.boot(), vm_state=VmState.ERROR, progress=40)
    accepted = stop.stop(engine.service, admin_ctx(), inst)
    assert (accepted.task_state, accepted.progress) == (TaskState.POWERING_OFF, 0)
    engine.drain()
    done = server(engine, inst)
    assert (done.vm_state, done.power_state, done.task_state) == (VmState.STOPPED, PowerState.SHUTDOWN, None)


def test_power__the_flow_waits_without_a_worker_while_the_guest_shuts_down(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.set_durations({"power_off": 30.0})
    ctx = demo_ctx()
    stop.stop(engine.service, ctx, inst)
    assert engine.deliver_one() == "waiting"
    assert server(engine, inst).task_state == TaskState.POWERING_OFF
    [(event, result, _, _)] = events(engine, ctx)
    assert (event, result) == ("compute_stop_instance", None)
    engine.drain()
    assert server(engine, inst).vm_state == VmState.STOPPED
    assert engine.fleet.operation_count("power_off") == 1


# ---- failures ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["stop", "start", "pause", "unpause"])
def test_power__a_failed_operation_clears_the_task_state_and_keeps_the_vm_state(engine: Engine, name: str) -> None:
    call, before, _, operation, event, _, _, _ = POWER[name]
    inst = booted_in(engine, before)
    engine.fleet.add_fault(operation, mode="fail", message=f"{operation} refused by the hypervisor")
    ctx = demo_ctx()
    call(engine.service, ctx, inst)
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.power_state, after.fault) == (
        before, None, POWER_OF[before], None)
    assert events(engine, ctx) == [(event, "Error", inst.host, f"{operation} refused by the hypervisor")]
    assert engine.store.get_action(ctx.request_id).message == "Error"


@pytest.mark.parametrize("name", ["suspend", "resume"])
def test_power__a_failed_suspend_or_resume_leaves_the_server_in_error(engine: Engine, name: str) -> None:
    """Nova's ``_error_out_instance_on_exception`` around the driver call."""
    call, before, _, operation, event, _, _, _ = POWER[name]
    inst = booted_in(engine, before)
    engine.fleet.add_fault(operation, mode="fail", message="managed save failed")
    ctx = demo_ctx()
    call(engine.service, ctx, inst)
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.task_state) == (VmState.ERROR, None)
    assert after.fault is not None and after.fault["message"] == "managed save failed"
    assert events(engine, ctx) == [(event, "Error", inst.host, "managed save failed")]


def test_power__a_host_that_stopped_answering_fails_the_action(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.set_host_state(inst.host, up=False)
    ctx = demo_ctx()
    pause.pause(engine.service, ctx, inst)
    engine.drain()
    assert (server(engine, inst).vm_state, server(engine, inst).task_state) == (VmState.ACTIVE, None)
    [(_, result, _, details)] = events(engine, ctx)
    assert (result, details) == ("Error", f"Compute host {inst.host} is not responding")


# ---- reruns, deletes and resets --------------------------------------------------------------------------
def test_power__a_crash_during_the_operation_resumes_it_once(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    crash_once_after(monkeypatch, type(engine.fleet), "suspend")
    ctx = demo_ctx()
    suspend.suspend(engine.service, ctx, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.reaper.sweep(now=10**10) == [ctx.request_id]
    engine.drain()
    assert server(engine, inst).vm_state == VmState.SUSPENDED
    assert engine.fleet.operation_count("suspend") == 1
    assert [e[:2] for e in events(engine, ctx)] == [("compute_suspend_instance", "Success")]


def test_power__a_state_write_rerun_after_newer_actions_writes_nothing(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pause whose commit was lost after its state write is resumed after an unpause and a
    newer pause were accepted: its rerun leaves the newer pause's pausing alone."""
    inst = engine.boot()
    crash_once_after(monkeypatch, MarkPowerState, "execute")
    first = demo_ctx()
    pause.pause(engine.service, first, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert server(engine, inst).vm_state == VmState.PAUSED
    unpause.unpause(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    engine.fleet.set_durations({"pause": 1000.0})
    pause.pause(engine.service, demo_ctx(), server(engine, inst))
    assert first.request_id in engine.reaper.sweep(now=10**10)
    engine.runner.run(first.request_id, engine.store.get_run(first.request_id).wake)
    assert engine.store.get_run(first.request_id).status == "done"
    now = server(engine, inst)
    assert (now.vm_state, now.task_state) == (VmState.ACTIVE, TaskState.PAUSING)


def test_power__a_reset_state_while_it_runs_wins(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.set_durations({"power_off": 30.0})
    stop.stop(engine.service, demo_ctx(), inst)
    engine.deliver_one()
    reset_state.reset_state(engine.service, admin_ctx(), server(engine, inst), "error")
    engine.drain()
    now = server(engine, inst)
    assert (now.vm_state, now.task_state) == (VmState.ERROR, None)


def test_power__a_server_deleted_while_it_stops_stays_deleted(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    crash_once_before(monkeypatch, MarkPowerState, "execute")
    ctx = demo_ctx()
    stop.stop(engine.service, ctx, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    delete_server.delete_server(engine.service, admin_ctx(), server(engine, inst))
    engine.reaper.sweep(now=10**10)
    engine.drain()
    now = server(engine, inst)
    assert now.deleted and now.vm_state == VmState.DELETED


# ---- what the states allow afterwards ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["stop", "pause", "suspend"])
def test_power__a_second_action_while_one_runs_is_409(engine: Engine, name: str) -> None:
    call, before, task, *_ = POWER[name]
    inst = booted_in(engine, before)
    call(engine.service, demo_ctx(), inst)
    with pytest.raises(errors.InstanceInvalidState) as caught:
        create_backup.create_backup(engine.service, demo_ctx(), server(engine, inst), name="b",
                                    backup_type="daily", rotation=1)
    assert caught.value.message == f"Cannot 'createBackup' instance {inst.id} while it is in task_state {task}"


def test_power__never_launched_is_409_in_novas_words(engine: Engine) -> None:
    inst = set_fields(engine, engine.boot(), vm_state=VmState.ERROR, launched_at=None)
    with pytest.raises(errors.InstanceInvalidState) as caught:
        stop.stop(engine.service, demo_ctx(), inst)
    assert caught.value.message == f"Instance {inst.id} is in an invalid state for 'stop'"
    assert server(engine, inst).task_state is None
