"""createBackup with real workers killed with -9: during the snapshot and during the rotation."""
from __future__ import annotations

import pytest

from compute.actions.create_backup import create_backup
from compute.models import Instance
from compute.store import Store
from tests.integration.conftest import Namespace
from tests.integration.test_crash_recovery import (
    STALL_SECONDS,
    StartWorker,
    assert_events_once_success,
    boot,
    describe,
    wait_finished,
)
from tests.support.contexts import demo_ctx
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

BACKUP_EVENT = "compute_backup_instance"
# The backup flow's steps: checkpoint, begin (the event opens here), upload, rotate.
UPLOAD_STEP, ROTATE_STEP = 2, 3


def backup(runtime: Runtime, inst: Instance, name: str, rotation: int) -> str:
    ctx = demo_ctx()
    current = runtime.store.get_instance(inst.id)
    assert current is not None
    create_backup(runtime.service, ctx, current, name=name, backup_type="daily", rotation=rotation)
    return ctx.request_id


def backups(store: Store, inst: Instance) -> dict[str, str]:
    return {i.name: i.status for i in store.list_images() if i.properties.get("instance_uuid") == inst.id}


def wait_stalled_in(runtime: Runtime, request_id: str, cursor: int, rule_id: str) -> None:
    """The worker is inside step ``cursor`` of the backup, blocked in the stalled driver call."""
    store = runtime.store

    def inside() -> bool:
        run = store.get_run(request_id)
        event = store.get_event(request_id, f"001:{BACKUP_EVENT}")
        return (run is not None and run.status == "running" and run.cursor == cursor
                and event is not None and event.finish_time is None
                and runtime.fleet.fault_budget(rule_id) == 0)

    wait_for(inside, message=lambda: f"{request_id} inside step {cursor}\n{describe(store, request_id)}")


def ready_server(runtime: Runtime, names: tuple[str, ...], rotation: int) -> Instance:
    inst, create = boot(runtime, flavor_id="1")
    wait_finished(runtime.store, create)
    for name in names:
        wait_finished(runtime.store, backup(runtime, inst, name, rotation))
    return inst


def assert_backup_ended_once(runtime: Runtime, inst: Instance, request_id: str) -> None:
    run = wait_finished(runtime.store, request_id)
    assert (run.status, run.phase, run.error) == ("done", "forward", None), run
    assert_events_once_success(runtime.store, request_id, [BACKUP_EVENT])
    after = runtime.store.get_instance(inst.id)
    assert after is not None and (after.vm_state, after.task_state) == ("active", None)


def test_kill_during_snapshot__the_backup_completes_once_and_rotation_holds(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    first = start_worker("first")
    inst = ready_server(runtime, ("b1", "b2"), rotation=2)
    rule = runtime.fleet.add_fault("snapshot", mode="stall", times=1, seconds=STALL_SECONDS)
    rid = backup(runtime, inst, "b3", rotation=2)
    wait_stalled_in(runtime, rid, UPLOAD_STEP, rule)
    first.kill()
    start_worker("second")
    assert_backup_ended_once(runtime, inst, rid)
    assert backups(runtime.store, inst) == {"b2": "active", "b3": "active"}
    assert runtime.fleet.operation_count("snapshot") == 3


def test_kill_during_rotation__exactly_rotation_backups_remain(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    first = start_worker("first")
    inst = ready_server(runtime, ("b1", "b2", "b3"), rotation=5)
    rule = runtime.fleet.add_fault("delete_snapshot", mode="stall", times=1, seconds=STALL_SECONDS)
    rid = backup(runtime, inst, "b4", rotation=2)
    wait_stalled_in(runtime, rid, ROTATE_STEP, rule)
    first.kill()
    start_worker("second")
    assert_backup_ended_once(runtime, inst, rid)
    assert backups(runtime.store, inst) == {"b3": "active", "b4": "active"}
