from __future__ import annotations

import time

import pytest

from compute import errors
from compute.actions.create_backup import create_backup
from compute.states import TaskState, VmState
from tasks.create_backup import RotateBackups
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.crash import SimulatedCrash, crash_every_time, crash_once_before
from tests.support.engine import Engine


def backup(engine: Engine, inst, rotation: int, name: str = "b", backup_type: str = "daily", **kw):  # noqa: ANN001, ANN201
    ctx = kw.pop("ctx", None) or demo_ctx()
    image = create_backup(engine.service, ctx, inst, name=name, backup_type=backup_type, rotation=rotation, **kw)
    return ctx, image


def backups_of(engine: Engine, inst, backup_type: str = "daily") -> list[str]:  # noqa: ANN001
    return [i.name for i in engine.store.list_images()
            if i.properties.get("instance_uuid") == inst.id and i.properties.get("backup_type") == backup_type]


def test_backup__image_is_queued_at_accept_and_active_at_the_end(engine: Engine) -> None:
    inst = engine.boot()
    ctx, image = backup(engine, inst, rotation=2, metadata={"purpose": "nightly"})
    queued = engine.store.get_image(image.id)
    assert queued.status == "queued"
    assert engine.store.get_instance(inst.id).task_state == TaskState.IMAGE_BACKUP
    engine.drain()
    done = engine.store.get_image(image.id)
    assert done.status == "active" and done.size > 0
    assert done.properties == {"os_distro": "cirros", "hw_disk_bus": "virtio", "instance_uuid": inst.id,
                               "user_id": "demo", "image_type": "backup", "purpose": "nightly",
                               "backup_type": "daily"}
    assert done.visibility == "private" and done.owner == "demo"
    after = engine.store.get_instance(inst.id)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    [event] = engine.store.list_events(ctx.request_id)
    assert (event.event, event.result) == ("compute_backup_instance", "Success")
    assert engine.store.get_action(ctx.request_id).action == "createBackup"


def test_backup__three_with_rotation_two_keep_the_two_newest(engine: Engine) -> None:
    inst = engine.boot()
    for name in ("first", "second", "third"):
        backup(engine, inst, rotation=2, name=name)
        engine.drain()
    assert sorted(backups_of(engine, inst)) == ["second", "third"]


def test_backup__rotation_zero_deletes_every_backup_of_that_type(engine: Engine) -> None:
    inst = engine.boot()
    backup(engine, inst, rotation=5, name="old")
    engine.drain()
    backup(engine, inst, rotation=1, name="weekly", backup_type="weekly")
    engine.drain()
    backup(engine, inst, rotation=0, name="new")
    engine.drain()
    assert backups_of(engine, inst) == []
    assert backups_of(engine, inst, "weekly") == ["weekly"]


def test_backup__snapshot_failure_removes_the_image_and_restores_the_state(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.add_fault("snapshot", mode="fail", message="qemu-img convert failed")
    ctx, image = backup(engine, inst, rotation=1)
    engine.drain()
    assert engine.store.get_image(image.id) is None
    after = engine.store.get_instance(inst.id)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    [event] = engine.store.list_events(ctx.request_id)
    assert (event.result, event.details) == ("Error", "qemu-img convert failed")
    assert engine.store.get_action(ctx.request_id).message == "Error"


def test_backup__rotations_interleaved_by_a_crash_keep_only_the_newest(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """b is uploaded, its worker dies before rotating; c runs whole; b's rotation resumes last."""
    inst = engine.boot()
    backup(engine, inst, rotation=1, name="a")
    engine.drain()
    crash_once_before(monkeypatch, RotateBackups, "execute")
    b_ctx, _ = backup(engine, inst, rotation=1, name="b")
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.store.get_instance(inst.id).task_state is None
    backup(engine, inst, rotation=1, name="c")
    engine.drain()
    assert engine.reaper.sweep(now=time.time() + 3600) == [b_ctx.request_id]
    engine.drain()
    assert backups_of(engine, inst) == ["c"]
    assert engine.store.get_run(b_ctx.request_id).status == "done"


def test_backup__reserved_properties_and_volume_backed_are_400(engine: Engine) -> None:
    inst = engine.boot()
    with pytest.raises(errors.Invalid, match="image_type"):
        backup(engine, inst, rotation=1, metadata={"image_type": "snapshot"})
    engine.store.update_instance(inst.id, lambda i: setattr(i, "volume_backed", True))
    with pytest.raises(errors.Invalid, match="volume-backed"):
        backup(engine, engine.store.get_instance(inst.id), rotation=1)
    assert engine.store.list_actions(inst.id)[0].action == "create"


def test_backup__locked_server_is_409_for_owner_not_admin(engine: Engine) -> None:
    inst = engine.boot()
    engine.store.update_instance(inst.id, lambda i: setattr(i, "locked", True))
    with pytest.raises(errors.InstanceIsLocked):
        backup(engine, inst, rotation=1)
    assert [i.name for i in engine.store.list_images()] == ["cirros-0.6.2-x86_64-disk"]
    _, image = backup(engine, inst, rotation=1, ctx=admin_ctx())
    engine.drain()
    shared = engine.store.get_image(image.id)
    assert shared.visibility == "shared" and shared.properties["instance_owner"] == "demo"


def test_backup__rotation_waits_for_the_lock_of_another_rotation(engine: Engine) -> None:
    inst = engine.boot()
    backup(engine, inst, rotation=1, name="a")
    engine.drain()
    assert engine.store.acquire_rotation_lock(inst.id, "daily", "req-someone-else", 30)
    ctx, _ = backup(engine, inst, rotation=1, name="b")
    for _ in range(20):
        engine.runner.run(*engine.queue.pop())
    assert engine.store.get_run(ctx.request_id).status == "waiting"
    assert sorted(backups_of(engine, inst)) == ["a", "b"]
    engine.store.release_rotation_lock(inst.id, "daily", "req-someone-else")
    engine.drain()
    assert backups_of(engine, inst) == ["b"]


def test_backup__a_backend_delete_failure_keeps_that_image(engine: Engine) -> None:
    inst = engine.boot()
    for name in ("a", "b"):
        backup(engine, inst, rotation=5, name=name)
        engine.drain()
    engine.fleet.add_fault("delete_snapshot", mode="fail", times=1, message="glance: 503")
    ctx, _ = backup(engine, inst, rotation=1, name="c")
    engine.drain()
    assert sorted(backups_of(engine, inst)) == ["b", "c"]  # b (deleted first) failed and was kept
    assert engine.store.get_run(ctx.request_id).status == "done"


def test_backup__abandoned_by_the_reaper_leaves_no_saving_image(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    crash_every_time(monkeypatch, type(engine.fleet), "snapshot")
    ctx, image = backup(engine, inst, rotation=1)
    engine.crash_until_abandoned(ctx.request_id)
    assert engine.store.get_image(image.id) is None
    after = engine.store.get_instance(inst.id)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    assert engine.store.get_action(ctx.request_id).message == "Error"


def test_backup__abandoned_in_its_rotation_still_keeps_only_rotation_backups(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload made the new image active, so the rollback owes its rotation (found by the chaos test)."""
    inst = engine.boot()
    for name in ("a", "b"):
        backup(engine, inst, rotation=2, name=name)
        engine.drain()
    crash_every_time(monkeypatch, RotateBackups, "execute")
    ctx, _ = backup(engine, inst, rotation=2, name="c")
    engine.crash_until_abandoned(ctx.request_id)
    assert engine.store.get_run(ctx.request_id).status == "error"
    assert sorted(backups_of(engine, inst)) == ["b", "c"]
    assert engine.store.backups_past_rotation(inst.id, "daily", 2) == []
    assert engine.store.rotation_lock_holder(inst.id, "daily") is None
