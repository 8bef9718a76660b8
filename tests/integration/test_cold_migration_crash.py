"""Cold migration on the real stack: real Redis, real Celery broker, real prefork workers.

What these prove, against processes that really die (SIGKILL to the worker's group):
- a worker killed inside each phase, scheduling (after the destination claim), copy,
  finish, confirm and revert (in both of its halves), or between two polls of the copy:
  another worker finishes the action, every driver operation is started once, every
  event is recorded once, and the claims are exactly the ones the end state needs;
- an admin's cancel while a worker is inside the scheduling phase rolls everything back;
- with several worker processes each running the periodic confirmer, every resized
  server is confirmed exactly once.
"""
from __future__ import annotations

from typing import Any

import pytest

from compute.actions import cold_migration_cancel, confirm_resize, revert_resize
from compute.actions.migrate import migrate as cold_migrate
from compute.models import Instance, Migration
from compute.states import MigrationStatus, VmState
from compute.store import Store
from tasks.confirm_resize import ConfirmResizeFlow, DestroySourceCopy
from tasks.step import Flow, Step
from tasks.migrate import (
    ClaimDestination,
    CopyDiskAndPowerOff,
    FinishMigrationOnDestination,
    MigrateFlow,
)
from tasks.revert_resize import (
    DestroyDestinationCopy,
    FinishRevertOnSource,
    RevertResizeFlow,
)
from tests.integration.conftest import Namespace, WorkerProcess
from tests.integration.test_crash_recovery import (
    STALL_SECONDS,
    assert_each_wake_driven_once,
    assert_no_wake_driven_twice,
    boot,
    describe,
    run_of,
    usage_by_host,
    wait_finished,
    wait_inside_stalled_step,
)
from tests.support.contexts import demo_ctx
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

MIGRATE_EVENTS = ["conductor_migrate_server", "cold_migrate", "compute_prep_resize", "compute_resize_instance",
                  "compute_finish_resize"]
CONFIRM_EVENTS = ["compute_confirm_resize"]
REVERT_EVENTS = ["compute_revert_resize", "compute_finish_revert_resize"]


# ---- observations ----------------------------------------------------------------------------------
def where(flow: Flow, step: type[Step]) -> tuple[int, str]:
    """The cursor of ``step`` in ``flow`` and the event it records (for wait_inside_stalled_step)."""
    steps = flow.steps(None)  # type: ignore[arg-type]
    index = next(i for i, s in enumerate(steps) if type(s) is step)
    assert steps[index].event is not None
    return index, steps[index].event


def server(store: Store, inst: Instance) -> Instance:
    found = store.get_instance(inst.id)
    assert found is not None
    return found


def migration(store: Store, m: Migration) -> Migration:
    found = store.get_migration(m.id)
    assert found is not None
    return found


def assert_claims(store: Store, inst: Instance, hosts: set[str]) -> None:
    """Claims on exactly ``hosts``, and host usage equal to one flavor on each of them, nothing elsewhere."""
    assert store.hosts_claimed_by(inst.id) == hosts
    flavor = inst.flavor
    expected = {h.name: (0, 0, 0, 0) for h in store.list_hosts()}
    for host in hosts:
        expected[host] = (flavor.vcpus, flavor.ram, flavor.total_disk_gb, 1)
    assert usage_by_host(store) == expected


def assert_action_succeeded_once(store: Store, request_id: str, action: str, events: list[str]) -> None:
    record = store.get_action(request_id)
    assert record is not None and record.action == action
    assert (record.message, bool(record.finish_time)) == (None, True), record
    found = store.list_events(request_id)
    assert [e.event for e in found] == events, [(e.key, e.event, e.result) for e in found]
    assert all(e.result == "Success" and e.finish_time for e in found), found


def operations_once(runtime: Runtime, **expected_hosts: str) -> None:
    for operation, host in expected_hosts.items():
        assert [op["host"] for op in runtime.fleet.operations(operation)] == [host], operation


def booted(runtime: Runtime) -> Instance:
    inst, rid = boot(runtime)
    assert wait_finished(runtime.store, rid).status == "done"
    return server(runtime.store, inst)


def migrated(runtime: Runtime) -> tuple[Instance, Migration]:
    inst = booted(runtime)
    ctx = demo_ctx()
    ctx.roles.append("admin")
    m = cold_migrate(runtime.service, ctx, inst)
    assert wait_finished(runtime.store, ctx.request_id).status == "done"
    assert server(runtime.store, inst).vm_state == VmState.RESIZED
    return server(runtime.store, inst), migration(runtime.store, m)


def kill_inside(runtime: Runtime, worker: WorkerProcess, request_id: str, flow: Flow, step: type[Step],
                rule_id: str) -> str | None:
    cursor, event = where(flow, step)
    wait_inside_stalled_step(runtime, request_id, cursor=cursor, event=event, rule_id=rule_id)
    owner = run_of(runtime.store, request_id).owner
    worker.kill()
    return owner


def assert_taken_over(runtime: Runtime, request_id: str, killed_owner: str | None,
                      workers: list[WorkerProcess]) -> None:
    run = run_of(runtime.store, request_id)
    assert (run.status, run.phase, run.error, run.abort_reason) == ("done", "forward", None, None), run
    assert run.reaps >= 1 and run.owner != killed_owner
    assert_each_wake_driven_once(run, interrupted=1)
    assert_no_wake_driven_twice(workers, request_id)


# ---- kill -9 in each phase ----------------------------------------------------------------------
@pytest.mark.parametrize("phase, operation, step", [
    ("scheduling", "prep_resize", ClaimDestination),
    ("copy", "cold_migration", CopyDiskAndPowerOff),
    ("finish", "finish_migration", FinishMigrationOnDestination),
])
def test_kill_inside_a_migrate_phase__another_worker_finishes_it_once(
        namespace: Namespace, runtime: Runtime, start_worker: Any, phase: str, operation: str,
        step: type[Step]) -> None:
    first = start_worker("first")
    inst = booted(runtime)
    source = inst.host
    rule = runtime.fleet.add_fault(operation, mode="stall", times=1, seconds=STALL_SECONDS)
    ctx = demo_ctx()
    ctx.roles.append("admin")
    m = cold_migrate(runtime.service, ctx, inst)
    killed_owner = kill_inside(runtime, first, ctx.request_id, MigrateFlow(), step, rule)
    at_kill = migration(runtime.store, m)
    assert at_kill.dest_compute or phase == "scheduling"
    if phase == "scheduling":  # the kill lands after the destination claim
        assert len(runtime.store.hosts_claimed_by(inst.id)) == 2

    second = start_worker("second")
    wait_finished(runtime.store, ctx.request_id)

    done = migration(runtime.store, m)
    after = server(runtime.store, inst)
    assert done.status == MigrationStatus.FINISHED and done.dest_compute not in (None, source)
    assert (after.vm_state, after.task_state, after.host) == (VmState.RESIZED, None, done.dest_compute)
    assert_claims(runtime.store, after, {source, done.dest_compute})
    assert_action_succeeded_once(runtime.store, ctx.request_id, "migrate", MIGRATE_EVENTS)
    operations_once(runtime, cold_migration=source, finish_migration=done.dest_compute)
    assert_taken_over(runtime, ctx.request_id, killed_owner, [first, second])


def test_kill_between_polls_of_the_copy__the_running_copy_is_resumed_not_restarted(
        namespace: Namespace, runtime: Runtime, start_worker: Any) -> None:
    # 2 s of simulated copy per GiB x 20 GiB at duration_scale 0.1: 4 s of wall time, polled every 0.3 s.
    runtime.fleet.set_durations({"cold_migration_per_gb": 2.0})
    first = start_worker("first")
    inst = booted(runtime)
    ctx = demo_ctx()
    ctx.roles.append("admin")
    m = cold_migrate(runtime.service, ctx, inst)
    copy_cursor, _ = where(MigrateFlow(), CopyDiskAndPowerOff)

    def waiting_on_the_copy() -> bool:
        run = runtime.store.get_run(ctx.request_id)
        return (run is not None and run.status == "waiting" and run.cursor == copy_cursor
                and runtime.fleet.operation_count("cold_migration") == 1)

    wait_for(waiting_on_the_copy, message=lambda: f"waiting on the copy\n{describe(runtime.store, ctx.request_id)}")
    first.kill()
    copy_at_kill = runtime.fleet.operations("cold_migration")

    second = start_worker("second")
    run = wait_finished(runtime.store, ctx.request_id)

    done = migration(runtime.store, m)
    assert done.status == MigrationStatus.FINISHED and done.disk_remaining_bytes == 0
    assert runtime.fleet.operations("cold_migration") == copy_at_kill  # the same copy, not a second one
    assert_claims(runtime.store, server(runtime.store, inst), {inst.host, done.dest_compute})
    assert_action_succeeded_once(runtime.store, ctx.request_id, "migrate", MIGRATE_EVENTS)
    assert runtime.fleet.operation_count("cold_migration") == 1
    assert run.reaps >= 1
    assert_each_wake_driven_once(run, interrupted={0, 1})
    assert_no_wake_driven_twice([first, second], ctx.request_id)


def test_kill_inside_confirm__the_source_is_cleaned_once_and_its_claim_released(
        namespace: Namespace, runtime: Runtime, start_worker: Any) -> None:
    first = start_worker("first")
    inst, m = migrated(runtime)
    rule = runtime.fleet.add_fault("confirm_migration", mode="stall", times=1, seconds=STALL_SECONDS)
    ctx = demo_ctx()
    confirm_resize.confirm_resize(runtime.service, ctx, inst)
    killed_owner = kill_inside(runtime, first, ctx.request_id, ConfirmResizeFlow(), DestroySourceCopy, rule)
    assert migration(runtime.store, m).status == MigrationStatus.CONFIRMING

    second = start_worker("second")
    wait_finished(runtime.store, ctx.request_id)

    after = server(runtime.store, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, m.dest_compute)
    assert migration(runtime.store, m).status == MigrationStatus.CONFIRMED
    assert_claims(runtime.store, after, {m.dest_compute})
    assert_action_succeeded_once(runtime.store, ctx.request_id, "confirmResize", CONFIRM_EVENTS)
    operations_once(runtime, confirm_migration=m.source_compute)
    assert_taken_over(runtime, ctx.request_id, killed_owner, [first, second])


@pytest.mark.parametrize("operation, step", [("destroy", DestroyDestinationCopy),
                                             ("finish_revert_migration", FinishRevertOnSource)])
def test_kill_inside_revert__the_server_returns_once_with_only_its_source_claim(
        namespace: Namespace, runtime: Runtime, start_worker: Any, operation: str, step: type[Step]) -> None:
    first = start_worker("first")
    inst, m = migrated(runtime)
    rule = runtime.fleet.add_fault(operation, mode="stall", times=1, seconds=STALL_SECONDS)
    ctx = demo_ctx()
    revert_resize.revert_resize(runtime.service, ctx, inst)
    killed_owner = kill_inside(runtime, first, ctx.request_id, RevertResizeFlow(), step, rule)
    assert server(runtime.store, inst).task_state == "resize_reverting"

    second = start_worker("second")
    wait_finished(runtime.store, ctx.request_id)

    after = server(runtime.store, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, m.source_compute)
    assert migration(runtime.store, m).status == MigrationStatus.REVERTED
    assert_claims(runtime.store, after, {m.source_compute})
    assert_action_succeeded_once(runtime.store, ctx.request_id, "revertResize", REVERT_EVENTS)
    operations_once(runtime, destroy=m.dest_compute, finish_revert_migration=m.source_compute)
    assert_taken_over(runtime, ctx.request_id, killed_owner, [first, second])


# ---- cancel while a worker is inside the scheduling phase -----------------------------------------
def test_cancel_during_scheduling__rolled_back_by_the_worker_and_reported(
        namespace: Namespace, runtime: Runtime, start_worker: Any) -> None:
    worker = start_worker("only")
    inst = booted(runtime)
    source = inst.host
    # Shorter than the lease (3 s): the worker is slow, not lost.
    rule = runtime.fleet.add_fault("prep_resize", mode="stall", times=1, seconds=1.5)
    migrate_ctx = demo_ctx()
    migrate_ctx.roles.append("admin")
    m = cold_migrate(runtime.service, migrate_ctx, inst)
    cursor, event = where(MigrateFlow(), ClaimDestination)
    wait_inside_stalled_step(runtime, migrate_ctx.request_id, cursor=cursor, event=event, rule_id=rule)
    assert len(runtime.store.hosts_claimed_by(inst.id)) == 2

    cancel_ctx = demo_ctx()
    cancel_ctx.roles.append("admin")
    cold_migration_cancel.cancel_migration(runtime.service, cancel_ctx, server(runtime.store, inst), m.id)
    assert wait_finished(runtime.store, cancel_ctx.request_id).status == "done", describe(
        runtime.store, cancel_ctx.request_id)

    assert run_of(runtime.store, migrate_ctx.request_id).status == "error"
    assert migration(runtime.store, m).status == MigrationStatus.CANCELLED
    after = server(runtime.store, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, source)
    assert_claims(runtime.store, after, {source})
    assert_action_succeeded_once(runtime.store, cancel_ctx.request_id, "cold_migration_cancel",
                                 ["conductor_cold_migration_cancel"])
    assert runtime.fleet.operation_count("cold_migration") == 0
    assert worker.alive()


# ---- the periodic confirmer in several worker processes ------------------------------------------
@pytest.fixture
def confirm_window(namespace: Namespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started after this run the periodic confirmer: 1 s window, a sweep every 0.2 s."""
    base = namespace.worker_env

    def env() -> dict[str, str]:
        return {**base(), "COMPUTE_ACTIONS_RESIZE_CONFIRM_WINDOW": "1",
                "COMPUTE_ACTIONS_PERIODIC_INTERVAL_SECONDS": "0.2"}

    monkeypatch.setattr(namespace, "worker_env", env)


def test_periodic_confirm_in_three_workers__each_server_confirmed_once(
        namespace: Namespace, runtime: Runtime, start_worker: Any, confirm_window: None) -> None:
    workers = [start_worker(f"w{i}") for i in range(3)]
    servers = [migrated(runtime) for _ in range(3)]

    def all_confirmed() -> bool:
        return all(migration(runtime.store, m).status == MigrationStatus.CONFIRMED for _, m in servers)

    wait_for(all_confirmed, message=lambda: f"every migration confirmed: "
             f"{[migration(runtime.store, m).status for _, m in servers]}")

    for inst, m in servers:
        confirms = [a for a in runtime.store.list_actions(inst.id) if a.action == "confirmResize"]
        assert len(confirms) == 1, confirms
        assert (confirms[0].user_id, confirms[0].project_id, confirms[0].message) == (None, None, None)
        wait_finished(runtime.store, confirms[0].request_id)
        after = server(runtime.store, inst)
        assert (after.vm_state, after.host) == (VmState.ACTIVE, m.dest_compute)
        assert runtime.store.hosts_claimed_by(inst.id) == {m.dest_compute}
    assert runtime.fleet.operation_count("confirm_migration") == len(servers)
    sweepers = {w.name for w in workers if "auto-confirming" in w.log()}
    assert sweepers, "no worker logged an auto-confirm"
