"""The admin actions on servers the power flows left stopped, paused or suspended, end to end.

Real flows on the in-memory engine: a server is paused, stopped or suspended by its own
action, then moved or backed up as Nova allows (os-migrateLive: active, paused; migrate:
active, stopped; createBackup: active, stopped, paused, suspended), and is found in the
power state it had.
"""
from __future__ import annotations

import pytest

from compute import errors
from compute.actions import (
    confirm_resize,
    create_backup,
    pause,
    revert_resize,
    start,
    stop,
    suspend,
    unpause,
)
from compute.actions import migrate as cold
from compute.models import Instance
from compute.states import MigrationStatus, PowerState, VmState, server_status
from tests.support.contexts import admin_ctx
from tests.support.engine import Engine
from tests.unit.live_migration_helpers import SOURCE, boot_on_source
from tests.unit.live_migration_helpers import migrate as live_migrate


def server(engine: Engine, inst: Instance) -> Instance:
    found = engine.store.get_instance(inst.id)
    assert found is not None
    return found


def summary(engine: Engine, inst: Instance) -> tuple[str, int, str | None]:
    now = server(engine, inst)
    return server_status(now.vm_state, now.task_state), now.power_state, now.task_state


def powered(engine: Engine, action: str) -> Instance:
    """A server (the admin project's) on SOURCE, left stopped, paused or suspended by that action's flow."""
    inst = boot_on_source(engine)
    call = {"stop": stop.stop, "pause": pause.pause, "suspend": suspend.suspend}[action]
    call(engine.service, admin_ctx(), inst)
    engine.drain()
    return server(engine, inst)


# ---- live migration ---------------------------------------------------------------------------------------
def test_live_migration__of_a_paused_server_keeps_it_paused_on_the_destination(engine: Engine) -> None:
    inst = powered(engine, "pause")
    assert summary(engine, inst) == ("PAUSED", PowerState.PAUSED, None)
    request_id, migration = live_migrate(engine, inst)
    assert summary(engine, inst) == ("MIGRATING", PowerState.PAUSED, "migrating")
    engine.drain()
    moved = server(engine, inst)
    assert moved.host != SOURCE
    assert summary(engine, inst) == ("PAUSED", PowerState.PAUSED, None)
    assert engine.store.get_migration(migration.id).status == MigrationStatus.COMPLETED
    assert engine.store.get_action(request_id).message is None
    # and it can be unpaused where it now is
    unpause.unpause(engine.service, admin_ctx(), moved)
    engine.drain()
    assert summary(engine, inst) == ("ACTIVE", PowerState.RUNNING, None)
    [op] = engine.fleet.operations("unpause")
    assert op["host"] == moved.host


@pytest.mark.parametrize(("action", "vm_state"), [("stop", "stopped"), ("suspend", "suspended")])
def test_live_migration__of_a_stopped_or_suspended_server_is_409(engine: Engine, action: str, vm_state: str) -> None:
    inst = powered(engine, action)
    with pytest.raises(errors.InstanceInvalidState) as caught:
        live_migrate(engine, inst)
    assert caught.value.message == f"Cannot 'os-migrateLive' instance {inst.id} while it is in vm_state {vm_state}"
    assert engine.store.list_migrations(inst.id) == []


# ---- cold migration -----------------------------------------------------------------------------------------
def test_cold_migration__of_a_stopped_server_is_verify_resize_powered_off_then_stopped_on_confirm(
        engine: Engine) -> None:
    inst = powered(engine, "stop")
    migration = cold.migrate(engine.service, admin_ctx(), inst, host=None)
    assert summary(engine, inst) == ("RESIZE", PowerState.SHUTDOWN, "resize_prep")
    engine.drain()
    resized = server(engine, inst)
    assert resized.host != SOURCE
    assert summary(engine, inst) == ("VERIFY_RESIZE", PowerState.SHUTDOWN, None)
    assert engine.store.get_migration(migration.id).status == MigrationStatus.FINISHED
    confirm_resize.confirm_resize(engine.service, admin_ctx(), resized)
    engine.drain()
    assert summary(engine, inst) == ("SHUTOFF", PowerState.SHUTDOWN, None)
    assert server(engine, inst).host == resized.host
    # started where it now is
    start.start(engine.service, admin_ctx(), server(engine, inst))
    engine.drain()
    assert summary(engine, inst) == ("ACTIVE", PowerState.RUNNING, None)
    [op] = engine.fleet.operations("power_on")
    assert op["host"] == resized.host


def test_cold_migration__of_a_stopped_server_reverted_is_stopped_on_its_source(engine: Engine) -> None:
    inst = powered(engine, "stop")
    cold.migrate(engine.service, admin_ctx(), inst, host=None)
    engine.drain()
    revert_resize.revert_resize(engine.service, admin_ctx(), server(engine, inst))
    engine.drain()
    assert summary(engine, inst) == ("SHUTOFF", PowerState.SHUTDOWN, None)
    assert server(engine, inst).host == SOURCE


@pytest.mark.parametrize(("action", "vm_state"), [("pause", "paused"), ("suspend", "suspended")])
def test_cold_migration__of_a_paused_or_suspended_server_is_409(engine: Engine, action: str, vm_state: str) -> None:
    inst = powered(engine, action)
    with pytest.raises(errors.InstanceInvalidState) as caught:
        cold.migrate(engine.service, admin_ctx(), inst, host=None)
    assert caught.value.message == f"Cannot 'migrate' instance {inst.id} while it is in vm_state {vm_state}"


# ---- createBackup -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("action", "status", "power"), [
    ("stop", "SHUTOFF", PowerState.SHUTDOWN),
    ("pause", "PAUSED", PowerState.PAUSED),
    ("suspend", "SUSPENDED", PowerState.SUSPENDED),
])
def test_backup__of_a_stopped_paused_or_suspended_server_leaves_it_so(
        engine: Engine, action: str, status: str, power: int) -> None:
    inst = powered(engine, action)
    image = create_backup.create_backup(engine.service, admin_ctx(), inst, name=f"{action}-b",
                                        backup_type="daily", rotation=2)
    engine.drain()
    assert engine.store.get_image(image.id).status == "active"
    assert summary(engine, inst) == (status, power, None)


def test_backup__of_a_server_still_stopping_is_409(engine: Engine) -> None:
    inst = boot_on_source(engine)
    engine.fleet.set_durations({"power_off": 30.0})
    stop.stop(engine.service, admin_ctx(), inst)
    with pytest.raises(errors.InstanceInvalidState, match="while it is in task_state powering-off"):
        create_backup.create_backup(engine.service, admin_ctx(), server(engine, inst), name="b",
                                    backup_type="daily", rotation=1)
    assert server(engine, inst).vm_state == VmState.ACTIVE
