"""A step re-run by the reaper after the world moved on is a no-op.

Each test kills the worker right after a step's side effect, before its cursor commit, lets
other actions run on the same server, then lets the reaper resume the first action: the
step runs again and must leave what the later actions did alone.
"""
from __future__ import annotations

import heapq
import time

import pytest

from compute import migrations
from compute.actions import confirm_resize, revert_resize
from compute.actions import live_migrate as live_migrate_action
from compute.actions.change_password import change_password
from compute.actions.create_backup import create_backup
from compute.actions.create_server import create_server
from compute.actions.migrate import migrate as migrate_action
from compute.models import Instance, Migration
from compute.states import MigrationStatus, TaskState, VmState
from tasks.change_password import FinishPasswordChange
from tasks.confirm_resize import MarkConfirmed
from tasks.create_backup import UploadSnapshot
from tasks.create_server import MarkActive
from tasks.live_migrate import PostLiveMigration
from tasks.migrate import MarkResized
from tasks.revert_resize import MarkReverted
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.crash import SimulatedCrash, crash_once_after
from tests.support.engine import Engine, deliver_until


# ---- helpers ---------------------------------------------------------------------------------
def crash(engine: Engine) -> None:
    with pytest.raises(SimulatedCrash):
        engine.drain()


def resume_alone(engine: Engine, request_id: str) -> str:
    """The reaper takes the dead worker's action back; its delivery runs before anything else queued."""
    assert request_id in engine.reaper.sweep(now=time.time() + 3600)
    [entry] = [e for e in engine.queue.pending if e[2] == request_id]
    engine.queue.pending.remove(entry)
    heapq.heapify(engine.queue.pending)
    return engine.runner.run(request_id, entry[3])


def server(engine: Engine, inst: Instance) -> Instance:
    found = engine.store.get_instance(inst.id)
    assert found is not None
    return found


def status(engine: Engine, m: Migration) -> str:
    found = engine.store.get_migration(m.id)
    assert found is not None
    return found.status


def claims(engine: Engine, inst: Instance) -> set[str]:
    return engine.store.hosts_claimed_by(inst.id)


def cold_migrate(engine: Engine, inst: Instance) -> tuple[str, Migration]:
    ctx = admin_ctx()
    return ctx.request_id, migrate_action(engine.service, ctx, server(engine, inst))


def confirm(engine: Engine, inst: Instance) -> str:
    ctx = demo_ctx()
    confirm_resize.confirm_resize(engine.service, ctx, server(engine, inst))
    return ctx.request_id


def revert(engine: Engine, inst: Instance) -> str:
    ctx = demo_ctx()
    revert_resize.revert_resize(engine.service, ctx, server(engine, inst))
    return ctx.request_id


# ---- 5. cold migration: MarkResized, MarkConfirmed, MarkReverted --------------------------------
def test_mark_resized_rerun_after_the_move_was_confirmed__leaves_it_confirmed(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    source = inst.host
    crash_once_after(monkeypatch, MarkResized, "execute")
    migrate_rid, m = cold_migrate(engine, inst)
    crash(engine)
    assert (server(engine, inst).vm_state, status(engine, m)) == (VmState.RESIZED, MigrationStatus.FINISHED)
    dest = server(engine, inst).host

    confirm(engine, inst)
    engine.drain()
    assert (server(engine, inst).vm_state, status(engine, m)) == (VmState.ACTIVE, MigrationStatus.CONFIRMED)
    assert engine.fleet.operation_count("confirm_migration") == 1  # the source copy is gone

    assert resume_alone(engine, migrate_rid) == "done"
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, dest)
    assert status(engine, m) == MigrationStatus.CONFIRMED
    assert claims(engine, inst) == {dest}
    assert migrations.finished_migration(engine.store, inst.id) is None  # nothing to revert onto the source
    assert source != dest


def test_mark_confirmed_rerun_after_a_newer_move__leaves_that_move_in_verify_resize(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    _, first = cold_migrate(engine, inst)
    engine.drain()
    crash_once_after(monkeypatch, MarkConfirmed, "execute")
    confirm_rid = confirm(engine, inst)
    crash(engine)
    assert (server(engine, inst).vm_state, status(engine, first)) == (VmState.ACTIVE, MigrationStatus.CONFIRMED)
    home = server(engine, inst).host

    _, second = cold_migrate(engine, inst)
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    dest = server(engine, inst).host

    assert resume_alone(engine, confirm_rid) == "done"
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.RESIZED, None, dest)
    assert (status(engine, first), status(engine, second)) == (MigrationStatus.CONFIRMED, MigrationStatus.FINISHED)
    assert claims(engine, inst) == {home, dest}

    revert(engine, inst)  # the newer move can still be finished, and its claims come back
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.host, status(engine, second)) == (VmState.ACTIVE, home, MigrationStatus.REVERTED)
    assert_claims_follow_servers(engine.store)


def test_mark_reverted_rerun_after_a_newer_move__leaves_that_move_in_verify_resize(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    source = inst.host
    _, first = cold_migrate(engine, inst)
    engine.drain()
    crash_once_after(monkeypatch, MarkReverted, "execute")
    revert_rid = revert(engine, inst)
    crash(engine)
    assert (server(engine, inst).vm_state, status(engine, first)) == (VmState.ACTIVE, MigrationStatus.REVERTED)

    _, second = cold_migrate(engine, inst)
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    dest = server(engine, inst).host

    assert resume_alone(engine, revert_rid) == "done"
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.RESIZED, None, dest)
    assert (status(engine, first), status(engine, second)) == (MigrationStatus.REVERTED, MigrationStatus.FINISHED)
    assert claims(engine, inst) == {source, dest}

    confirm(engine, inst)
    engine.drain()
    assert (server(engine, inst).vm_state, status(engine, second)) == (VmState.ACTIVE, MigrationStatus.CONFIRMED)
    assert_claims_follow_servers(engine.store)


# ---- 6. live migration: PostLiveMigration.on_done -------------------------------------------------
LIVE_SOURCE, LIVE_DEST = "compute-kvm-1", "compute-kvm-2"  # same hypervisor version: a way back


def live_migrate(engine: Engine, inst: Instance, host: str | None = None) -> tuple[str, Migration]:
    ctx = admin_ctx()
    request = live_migrate_action.LiveMigrationRequest(host=host, block_migration=None)
    return ctx.request_id, live_migrate_action.live_migrate(engine.service, ctx, server(engine, inst), request)


@pytest.mark.parametrize("next_one", ["copying", "completed"])
def test_post_live_migration_rerun_after_the_next_live_migration__leaves_it_alone(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, next_one: str) -> None:
    """The server went source -> dest; the next migration brings it back to the source."""
    inst = engine.boot(availability_zone=f"nova:{LIVE_SOURCE}", ctx=admin_ctx())
    crash_once_after(monkeypatch, PostLiveMigration, "on_done")
    first_rid, first = live_migrate(engine, inst, host=LIVE_DEST)
    crash(engine)
    moved, dest = server(engine, inst), LIVE_DEST
    assert (status(engine, first), moved.host, moved.task_state, claims(engine, inst)) == (
        "completed", dest, None, {dest})

    engine.fleet.set_durations({"live_migration_per_gb": 100.0})
    _, second = live_migrate(engine, inst, host=LIVE_SOURCE)
    if next_one == "copying":
        deliver_until(engine, lambda: status(engine, second) == "running")
        expected = (dest, TaskState.MIGRATING, {dest, LIVE_SOURCE})
    else:
        engine.drain()
        expected = (LIVE_SOURCE, None, {LIVE_SOURCE})

    assert resume_alone(engine, first_rid) == "done"
    after = server(engine, inst)
    assert (after.host, after.task_state, claims(engine, inst)) == expected

    engine.drain()
    after = server(engine, inst)
    assert (status(engine, second), after.host, after.node, after.task_state) == (
        "completed", LIVE_SOURCE, LIVE_SOURCE, None)
    assert claims(engine, inst) == {LIVE_SOURCE}
    assert_claims_follow_servers(engine.store)


def test_post_live_migration_rerun_after_a_crash_inside_it__finishes_the_move(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the source claim went, before the server moved: the rerun still moves it."""
    inst = engine.boot(availability_zone=f"nova:{LIVE_SOURCE}", ctx=admin_ctx())
    crash_once_after(monkeypatch, engine.store, "release_claim")
    rid, migration = live_migrate(engine, inst)
    crash(engine)
    assert status(engine, migration) == "completed"

    assert resume_alone(engine, rid) == "done"
    after = server(engine, inst)
    assert after.host != LIVE_SOURCE and after.task_state is None
    assert claims(engine, inst) == {after.host}
    assert_claims_follow_servers(engine.store)


# ---- 7. task_state moves: backup, create, change password -------------------------------------
def backup(engine: Engine, inst: Instance, name: str) -> tuple[str, str]:
    ctx = demo_ctx()
    image = create_backup(engine.service, ctx, server(engine, inst), name=name, backup_type="daily", rotation=5)
    return ctx.request_id, image.id


def test_upload_snapshot_rerun_while_a_newer_backup_uploads__leaves_its_task_state(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    crash_once_after(monkeypatch, UploadSnapshot, "on_done")
    first_rid, first_image = backup(engine, inst, "a")
    crash(engine)
    assert server(engine, inst).task_state is None
    assert engine.store.get_image(first_image).status == "active"

    engine.fleet.set_durations({"snapshot": 100.0})
    _, second_image = backup(engine, inst, "b")
    deliver_until(engine, lambda: server(engine, inst).task_state == TaskState.IMAGE_UPLOADING)

    assert resume_alone(engine, first_rid) == "done"
    assert server(engine, inst).task_state == TaskState.IMAGE_UPLOADING

    engine.drain()
    assert server(engine, inst).task_state is None
    assert [engine.store.get_image(i).status for i in (first_image, second_image)] == ["active", "active"]


def test_upload_snapshot_rerun_after_a_crash_between_the_image_and_the_task_state__clears_it(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image is already active but task_state still image_uploading: the rerun must still clear it."""
    inst = engine.boot()
    crash_once_after(monkeypatch, engine.store, "add_backup")
    rid, image = backup(engine, inst, "a")
    crash(engine)
    assert engine.store.get_image(image).status == "active"
    assert server(engine, inst).task_state == TaskState.IMAGE_UPLOADING

    assert resume_alone(engine, rid) == "done"
    assert server(engine, inst).task_state is None


def test_mark_active_rerun_after_a_later_action_began__leaves_its_task_state(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_once_after(monkeypatch, MarkActive, "execute")
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=None)
    crash(engine)
    assert server(engine, inst).vm_state == VmState.ACTIVE

    _, image = backup(engine, inst, "a")
    assert server(engine, inst).task_state == TaskState.IMAGE_BACKUP

    assert resume_alone(engine, ctx.request_id) == "done"
    assert (server(engine, inst).vm_state, server(engine, inst).task_state) == (VmState.ACTIVE, TaskState.IMAGE_BACKUP)

    engine.drain()
    assert server(engine, inst).task_state is None
    assert engine.store.get_image(image).status == "active"


def test_finish_password_change_rerun_while_a_newer_change_runs__leaves_its_task_state(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    crash_once_after(monkeypatch, FinishPasswordChange, "execute")
    first = demo_ctx()
    change_password(engine.service, first, server(engine, inst), "one")
    crash(engine)
    assert server(engine, inst).task_state is None
    first_set_at = server(engine, inst).password_set_at

    engine.fleet.set_durations({"set_admin_password": 100.0})
    change_password(engine.service, demo_ctx(), server(engine, inst), "two")
    engine.runner.run(*engine.queue.pop())
    assert server(engine, inst).task_state == TaskState.UPDATING_PASSWORD

    assert resume_alone(engine, first.request_id) == "done"
    during = server(engine, inst)
    assert (during.task_state, during.password_set_at) == (TaskState.UPDATING_PASSWORD, first_set_at)

    engine.drain()
    after = server(engine, inst)
    assert after.task_state is None and after.password_set_at > first_set_at
    assert engine.fleet.operation_count("set_admin_password") == 2
