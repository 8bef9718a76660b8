"""Waits that cost nothing: a waiting step is woken when its operation is due, not every poll interval.

On the in-memory engine (tests/support/engine.py), whose queue moves the fleet clock to each
message's due time, so the countdowns the engine chooses are what these tests read. The bound
checked: a driver operation the fleet says is due in ``d`` seconds costs one wake-up, or at most
``[engine] progress_updates`` (and at most one per ``progress_interval_seconds``) when its step
shows progress; a wait nobody can time backs off from ``poll_interval_seconds``, doubling, up to
``poll_backoff_max_seconds``.
"""
from __future__ import annotations

import math
import random
import time

import pytest

from compute.actions import live_migration_abort
from compute.actions.create_backup import create_backup
from compute.actions.inject_network_info import inject_network_info
from compute.driver import OperationStatus
from compute.models import FlowRun
from compute.settings import Settings
from tasks.live_migrate import LiveMigrateFlow
from tasks.step import BACKOFF_KEY, FlowContext, progress_wait
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.engine import Engine, deliver_until
from tests.unit.cold_migration_helpers import migrate as cold_migrate
from tests.unit.live_migration_helpers import boot_on_source, migrate, status_of


@pytest.fixture
def countdowns(engine: Engine) -> list[tuple[str, float]]:
    """Every (request_id, countdown) the engine queues, in order."""
    seen: list[tuple[str, float]] = []
    enqueue = engine.queue.enqueue

    def recording(request_id: str, wake: int, countdown: float = 0.0, **target: str) -> None:
        seen.append((request_id, countdown))
        enqueue(request_id, wake, countdown, **target)

    engine.queue.enqueue = recording  # type: ignore[method-assign]
    return seen


def deliveries(engine: Engine, request_id: str) -> int:
    run = engine.store.get_run(request_id)
    assert run is not None
    return run.deliveries


def thirty_second_copy(engine: Engine) -> None:
    engine.fleet.set_durations({"live_migration": 30.0, "live_migration_per_gb": 0.0,
                                "pre_live_migration": 0.0, "post_live_migration_at_destination": 0.0})


# ---- the bound, on the operations themselves ---------------------------------------------------------
def test_an_operation_without_progress_is_woken_once_when_it_is_due(engine: Engine,
                                                                    countdowns: list[tuple[str, float]]) -> None:
    engine.fleet.set_durations({"inject_network_info": 7.0})
    inst = engine.boot()
    ctx = admin_ctx()
    countdowns.clear()
    inject_network_info(engine.service, ctx, inst)
    started, wall = engine.fleet.clock.now(), time.monotonic()
    engine.drain()
    wall = time.monotonic() - wall  # the deliveries' own time, which the fleet clock also counts

    assert engine.store.get_run(ctx.request_id).status == "done"
    assert deliveries(engine, ctx.request_id) == 2  # the one that starts it, the one when it is due
    [(_, accepted), (_, due)] = countdowns
    assert accepted == 0.0 and 7.0 <= due <= 7.01
    assert 7.0 - 0.02 <= engine.fleet.clock.now() - started <= 7.0 + 0.02 + wall


def test_a_30_s_live_migration_wakes_at_most_progress_updates_times_and_its_bytes_move(
        engine: Engine, countdowns: list[tuple[str, float]]) -> None:
    thirty_second_copy(engine)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    updates = engine.settings.engine.progress_updates
    seen: list[int] = []
    while engine.queue.pending:
        engine.deliver_one()
        record = engine.store.get_migration(migration.id)
        if record.status == "running":
            seen.append(record.memory_processed_bytes or 0)

    assert status_of(engine, migration) == "completed"
    steps = len(LiveMigrateFlow().steps(engine.store.get_run(rid)))
    # One delivery runs every quick step up to the copy; then one wake-up per mark and one when due.
    assert 30.0 / updates >= engine.settings.engine.progress_interval_seconds
    assert deliveries(engine, rid) == 1 + updates < steps * 2
    assert seen == sorted(seen) and len(set(seen)) >= updates - 1  # progress moved at (almost) every wake
    waits = [c for r, c in countdowns if r == rid and c > 0]
    assert sum(waits) == pytest.approx(30.0, abs=0.1)
    assert min(waits) >= engine.settings.engine.progress_interval_seconds - 0.01


@pytest.mark.parametrize("updates", [1, 5, 10])
@pytest.mark.parametrize("duration", [0.7, 3.0, 30.0, 600.0, 10_000.0])
def test_progress_wakes_are_bounded_by_updates_and_by_the_interval(engine: Engine, duration: float,
                                                                   updates: int) -> None:
    engine.settings.engine.progress_updates = updates
    thirty_second_copy(engine)
    engine.fleet.set_durations({"live_migration": duration})
    engine.settings.libvirt.live_migration_completion_timeout = 0
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "completed"
    options = engine.settings.engine
    wakes = deliveries(engine, rid) - 1
    assert 1 <= wakes <= min(options.progress_updates, int(duration / options.progress_interval_seconds) + 1)


def test_progress_wait__every_early_wake_passes_a_mark() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        duration, updates, interval = rng.uniform(0.1, 5000), rng.randint(1, 20), rng.uniform(0, 5)
        now, wakes = rng.uniform(0, duration * 0.99), 0
        while duration - now > 1e-6:  # a due wake-up lands on the end (the fleet adds a millisecond)
            progress = int(100 * now / duration)
            wait = progress_wait(progress, duration - now, updates, interval)
            assert 0 < wait <= duration - now + 1e-9
            now += wait
            wakes += 1
            assert wakes <= updates, (duration, updates, interval)


def test_backup_upload_progress_moves_on_the_image_and_the_server(engine: Engine) -> None:
    engine.fleet.set_durations({"snapshot": 20.0, "snapshot_per_gb": 0.0})
    inst = engine.boot()
    ctx = demo_ctx()
    image = create_backup(engine.service, ctx, inst, name="b", backup_type="daily", rotation=1)
    seen, on_server = [], []
    while engine.queue.pending:
        engine.deliver_one()
        current = engine.store.get_image(image.id)
        if current is not None and current.status == "saving":
            seen.append(current.progress)
            on_server.append(engine.store.get_instance(inst.id).progress)
    assert engine.store.get_image(image.id).status == "active"
    updates = engine.settings.engine.progress_updates
    assert seen == sorted(seen) and len(set(seen)) >= updates - 1
    assert on_server == seen  # the server's progress is the upload's, as a migration's copy is
    server = engine.store.get_instance(inst.id)
    assert (server.task_state, server.progress) == (None, 0)
    assert deliveries(engine, ctx.request_id) <= 1 + updates


def test_cold_migration_copy_is_woken_for_progress_a_bounded_number_of_times(engine: Engine) -> None:
    engine.fleet.set_durations({"cold_migration": 40.0, "cold_migration_per_gb": 0.0})
    inst = engine.boot()
    ctx, migration = cold_migrate(engine, inst)
    seen = []
    while engine.queue.pending:
        engine.deliver_one()
        server = engine.store.get_instance(inst.id)
        if server.task_state == "resize_migrating":
            seen.append(server.progress)
    assert engine.store.get_migration(migration.id).status == "finished"
    updates = engine.settings.engine.progress_updates
    assert seen == sorted(seen) and len(set(seen)) >= updates - 1
    assert deliveries(engine, ctx.request_id) <= 1 + updates + 1  # + the finish on the destination


# ---- backoff ---------------------------------------------------------------------------------------
def test_an_operation_nobody_can_time_is_polled_with_backoff(engine: Engine,
                                                            countdowns: list[tuple[str, float]]) -> None:
    inst = engine.boot()
    engine.fleet.add_fault("inject_network_info", mode="hang")
    ctx = admin_ctx()
    inject_network_info(engine.service, ctx, inst)
    for _ in range(8):
        engine.deliver_one()
    waits = [c for r, c in countdowns if r == ctx.request_id and c > 0]
    options = engine.settings.engine
    assert waits == [min(options.poll_interval_seconds * 2 ** n, options.poll_backoff_max_seconds)
                     for n in range(len(waits))]
    assert waits[-1] == options.poll_backoff_max_seconds
    assert engine.store.get_run(ctx.request_id).ctx[BACKOFF_KEY] == options.poll_backoff_max_seconds


def test_backoff_doubles_up_to_its_cap_and_a_finished_run_keeps_no_backoff(engine: Engine) -> None:
    inst = engine.boot()
    [create] = engine.store.list_actions(inst.id)
    run = engine.store.get_run(create.request_id)
    assert run.status == "done" and BACKOFF_KEY not in run.ctx
    fc = FlowContext(engine.store, engine.fleet, engine.settings, run)
    assert [fc.backoff().seconds for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_the_backoff_starts_again_at_the_next_step(engine: Engine, countdowns: list[tuple[str, float]]) -> None:
    """A rotation waiting on another backup's lock backs off from the start, not from an earlier wait."""
    inst = engine.boot()
    engine.store.acquire_rotation_lock(inst.id, "daily", "someone-else", 3600)
    engine.fleet.add_fault("snapshot", mode="hang")
    ctx = demo_ctx()
    create_backup(engine.service, ctx, inst, name="b", backup_type="daily", rotation=1)
    for _ in range(4):  # the upload hangs: it backs off
        engine.deliver_one()
    engine.fleet.clear_faults()
    engine.store.update_fleet_op(f"{ctx.request_id}:snapshot", outcome="ok", force_complete=True)
    for _ in range(3):  # the upload is done; the rotation waits for the lock
        engine.deliver_one()
    waits = [c for r, c in countdowns if r == ctx.request_id and c > 0]
    assert waits == [0.5, 1.0, 2.0, 4.0, 0.5, 1.0, 2.0]


def test_a_driver_that_reports_a_due_time_is_not_polled_before_it(engine: Engine) -> None:
    fc = FlowContext(engine.store, engine.fleet, engine.settings,
                     FlowRun(request_id="req-x", flow="x", instance_uuid="i"))
    assert fc.wait_for(OperationStatus(done=False, due_in=42.0)).seconds == 42.0
    # With progress: the time to the next mark (the first is at ceil(100 / updates) %), ...
    first_mark = math.ceil(100 / engine.settings.engine.progress_updates)
    assert fc.wait_for(OperationStatus(done=False, due_in=42.0, progress=0), progress=True).seconds \
        == pytest.approx(42.0 * first_mark / 100, abs=0.01)
    # ... and past the last mark, the due time.
    assert fc.wait_for(OperationStatus(done=False, due_in=4.0, progress=95), progress=True).seconds == 4.0
    assert fc.wait_for(OperationStatus(done=False, due_in=None)).seconds == 0.5


def test_backoff_cap_is_a_setting() -> None:
    options = Settings(engine={"poll_backoff_max_seconds": 3.0, "poll_interval_seconds": 0.25}).engine
    assert (options.poll_backoff_max_seconds, options.poll_interval_seconds) == (3.0, 0.25)


# ---- waiting for another flow ----------------------------------------------------------------------
def test_abort_wakes_the_migration_at_once_and_waits_with_backoff(engine: Engine) -> None:
    thirty_second_copy(engine)
    engine.fleet.set_durations({"live_migration": 600.0})
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    before = engine.fleet.clock.now()
    ctx = admin_ctx()
    live_migration_abort.abort(engine.service, ctx, engine.store.get_instance(inst.id), str(migration.id))
    deliver_until(engine, lambda: status_of(engine, migration) == "cancelled"
                  and engine.store.get_run(rid).finished)
    # The migration's own next wake-up was a minute away; the abort's nudge delivered it now.
    assert engine.fleet.clock.now() - before < 1.0
    engine.drain()
    assert engine.store.get_run(ctx.request_id).status == "done"
    assert deliveries(engine, ctx.request_id) <= 3


def test_cold_migration_cancel_backs_off_while_the_migration_rolls_back(engine: Engine) -> None:
    from compute.actions import cold_migration_cancel

    inst = engine.boot()
    ctx, migration = cold_migrate(engine, inst)
    cancel_ctx = admin_ctx()
    cold_migration_cancel.cancel_migration(engine.service, cancel_ctx, engine.store.get_instance(inst.id), str(migration.id))
    engine.drain()
    assert engine.store.get_migration(migration.id).status == "cancelled"
    assert engine.store.get_run(cancel_ctx.request_id).status == "done"
    assert deliveries(engine, cancel_ctx.request_id) <= 3
