"""Cold migration (migrate) on the in-memory engine (real flows, fakeredis): scheduling, failures, crashes.

The fleet: a flavor-2 server boots on compute-kvm-3 (most free RAM); a migration then
tries compute-kvm-1, compute-kvm-2, compute-kvm-4 in that order ([scheduler] max_attempts 3).
confirmResize, revertResize and cancel have their own files; the helpers are in
tests/unit/cold_migration_helpers.py.
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from compute import errors
from compute.actions import confirm_resize
from compute.actions.delete_server import delete_server
from compute.states import (
    MigrationStatus,
    PowerState,
    TaskState,
    VmState,
    server_status,
)
from tasks.migrate import CopyDiskAndPowerOff
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.crash import SimulatedCrash, crash_once_after
from tests.support.engine import Engine
from tests.unit.cold_migration_helpers import (
    ALTERNATES,
    MIGRATE_EVENTS,
    SOURCE,
    claims,
    events,
    migrate,
    migration,
    server,
    set_fields,
    statuses_written,
    usage,
)


# ---- migrate ------------------------------------------------------------------------------------
def test_migrate__ends_resized_on_the_destination_with_claims_on_both_hosts(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    assert inst.host == SOURCE
    written = statuses_written(monkeypatch)
    ctx, m = migrate(engine, inst)

    accepted = server(engine, inst)
    assert (accepted.task_state, server_status(accepted.vm_state, accepted.task_state)) == ("resize_prep", "RESIZE")
    assert migration(engine, m).status == MigrationStatus.PRE_MIGRATING
    engine.drain()

    assert written == ["pre-migrating", "migrating", "post-migrating", "finished"]
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.power_state) == (VmState.RESIZED, None, PowerState.RUNNING)
    assert server_status(after.vm_state, after.task_state) == "VERIFY_RESIZE"
    assert (after.host, after.node) == ("compute-kvm-1", "compute-kvm-1")
    assert claims(engine, inst) == {SOURCE, "compute-kvm-1"}
    assert usage(engine) == {SOURCE: 1, "compute-kvm-1": 1}
    done = migration(engine, m)
    assert done.model_dump(include={"migration_type", "status", "source_compute", "source_node", "dest_compute",
                                    "dest_node", "dest_host", "old_instance_type_id", "new_instance_type_id",
                                    "user_id", "project_id", "request_id", "instance_uuid"}) == {
        "migration_type": "migration", "status": "finished", "source_compute": SOURCE, "source_node": SOURCE,
        "dest_compute": "compute-kvm-1", "dest_node": "compute-kvm-1", "dest_host": "192.0.2.11",
        "old_instance_type_id": "2", "new_instance_type_id": "2", "user_id": "admin", "project_id": "admin",
        "request_id": ctx.request_id, "instance_uuid": inst.id}
    assert done.disk_total_bytes == 20 << 30 and done.disk_remaining_bytes == 0
    assert events(engine, ctx.request_id) == [
        ("conductor_migrate_server", "Success", "compute-actions"), ("cold_migrate", "Success", "compute-actions"),
        ("compute_prep_resize", "Success", "compute-kvm-1"), ("compute_resize_instance", "Success", SOURCE),
        ("compute_finish_resize", "Success", "compute-kvm-1")]
    assert engine.store.list_events(ctx.request_id)[1].details == (
        f"Chose compute-kvm-1. Rejected: {SOURCE}: the server is on this host")
    action = engine.store.get_action(ctx.request_id)
    assert (action.action, action.message) == ("migrate", None) and action.finish_time
    assert [op["host"] for op in engine.fleet.operations("cold_migration")] == [SOURCE]
    assert [op["host"] for op in engine.fleet.operations("finish_migration")] == ["compute-kvm-1"]


def test_migrate__stopped_server_stays_powered_off_and_confirms_to_stopped(engine: Engine) -> None:
    inst = engine.boot()
    set_fields(engine, inst, vm_state=VmState.STOPPED, power_state=PowerState.SHUTDOWN)
    migrate(engine, inst)
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.power_state) == (VmState.RESIZED, PowerState.SHUTDOWN)
    confirm_resize.confirm_resize(engine.service, demo_ctx(), after)
    engine.drain()
    assert server(engine, inst).vm_state == VmState.STOPPED


def test_migrate__requested_host_is_the_only_candidate(engine: Engine) -> None:
    inst = engine.boot()
    ctx, m = migrate(engine, inst, host="compute-xen-2")
    engine.drain()
    assert server(engine, inst).host == "compute-xen-2"
    assert migration(engine, m).dest_compute == "compute-xen-2"
    assert claims(engine, inst) == {SOURCE, "compute-xen-2"}


@pytest.mark.parametrize("host, message", [
    (SOURCE, "Cannot migrate to the host where the server exists."),
    ("no-such-host", "Compute host no-such-host could not be found."),
])
def test_migrate__current_or_unknown_host_is_invalid_and_records_nothing(engine: Engine, host: str,
                                                                         message: str) -> None:
    inst = engine.boot()
    with pytest.raises(errors.Invalid) as caught:
        migrate(engine, inst, host=host)
    assert caught.value.message == message
    assert server(engine, inst).task_state is None
    assert engine.store.list_migrations(inst.id) == []
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["create"]


def test_migrate__source_compute_down_is_409(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.set_host_state(SOURCE, up=False)
    with pytest.raises(errors.Conflict, match="Service is unavailable at this time."):
        migrate(engine, inst)
    assert engine.store.list_migrations(inst.id) == []


@pytest.mark.parametrize("changes, attr", [
    ({"vm_state": VmState.PAUSED}, "vm_state paused"),
    ({"vm_state": VmState.RESIZED}, "vm_state resized"),
    ({"task_state": TaskState.IMAGE_BACKUP}, "task_state image_backup"),
    ({"launched_at": None}, None),  # a state of None is not named (Nova's common.py)
])
def test_migrate__wrong_state_is_409(engine: Engine, changes: dict[str, Any], attr: str | None) -> None:
    inst = engine.boot()
    set_fields(engine, inst, **changes)
    with pytest.raises(errors.InstanceInvalidState) as caught:
        migrate(engine, inst)
    expected = (f"Cannot 'migrate' instance {inst.id} while it is in {attr}" if attr
                else f"Instance {inst.id} is in an invalid state for 'migrate'")
    assert caught.value.message == expected


def test_migrate__locked_is_409_for_a_member_not_for_an_admin(engine: Engine) -> None:
    inst = engine.boot()
    set_fields(engine, inst, locked=True)
    with pytest.raises(errors.InstanceIsLocked):
        migrate(engine, inst, ctx=demo_ctx())
    migrate(engine, inst, ctx=admin_ctx())
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED


def test_migrate__second_migrate_while_one_runs_is_409(engine: Engine) -> None:
    inst = engine.boot()
    migrate(engine, inst)
    with pytest.raises(errors.InstanceInvalidState, match="task_state resize_prep"):
        migrate(engine, inst)
    assert len(engine.store.list_migrations(inst.id)) == 1


# ---- scheduling: alternates, reschedules, no valid host ------------------------------------------
def test_migrate__failed_prep_resize_reschedules_to_the_next_alternate(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.add_fault("prep_resize", host="compute-kvm-1", message="disk too slow")
    ctx, m = migrate(engine, inst)
    engine.drain()

    assert server(engine, inst).host == "compute-kvm-2"
    assert claims(engine, inst) == {SOURCE, "compute-kvm-2"}
    assert usage(engine) == {SOURCE: 1, "compute-kvm-2": 1}
    assert events(engine, ctx.request_id) == [
        ("conductor_migrate_server", "Success", "compute-actions"), ("cold_migrate", "Success", "compute-actions"),
        ("compute_prep_resize", "Error", "compute-kvm-1"), ("compute_prep_resize", "Success", "compute-kvm-2"),
        ("compute_resize_instance", "Success", SOURCE), ("compute_finish_resize", "Success", "compute-kvm-2")]
    failed = engine.store.list_events(ctx.request_id)[2]
    assert failed.details == "disk too slow" and "DriverError" in failed.traceback
    conductor = engine.store.list_events(ctx.request_id)[1]
    assert conductor.details == ("Chose compute-kvm-2. Rejected: compute-kvm-1: prep_resize failed: disk too slow; "
                                 f"{SOURCE}: the server is on this host")
    # Nova: a failed event marks the action Error even though the migration went on and finished.
    assert engine.store.get_action(ctx.request_id).message == "Error"
    assert migration(engine, m).status == MigrationStatus.FINISHED


@pytest.mark.parametrize("max_attempts", [3, 2])
def test_migrate__every_alternate_failing_ends_after_max_attempts_with_the_reasons(
        engine: Engine, max_attempts: int) -> None:
    engine.settings.scheduler.max_attempts = max_attempts
    inst = engine.boot()
    engine.fleet.add_fault("prep_resize", message="no room for the disk")
    ctx, m = migrate(engine, inst)
    engine.drain()

    tried = ALTERNATES[:max_attempts]
    assert events(engine, ctx.request_id) == [
        ("conductor_migrate_server", "Success", "compute-actions"), ("cold_migrate", "Error", "compute-actions"),
        *[("compute_prep_resize", "Error", host) for host in tried]]
    reason = engine.store.list_events(ctx.request_id)[1].details
    assert reason.startswith(f"No valid host was found. Exhausted all hosts available for retrying build "
                             f"failures for instance {inst.id}.\nRejected: ")
    for host in tried:
        assert f"{host}: prep_resize failed: no room for the disk" in reason
    assert f"{SOURCE}: the server is on this host" in reason
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host, after.power_state) == (
        VmState.ACTIVE, None, SOURCE, PowerState.RUNNING)
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert migration(engine, m).status == MigrationStatus.ERROR
    assert engine.fleet.operation_count("cold_migration") == 0


def test_migrate__requested_host_failing_prep_resize_is_not_rescheduled(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.add_fault("prep_resize", host="compute-kvm-2")
    ctx, m = migrate(engine, inst, host="compute-kvm-2")
    engine.drain()
    assert [e for e in events(engine, ctx.request_id) if e[0] == "compute_prep_resize"] == [
        ("compute_prep_resize", "Error", "compute-kvm-2")]
    assert server(engine, inst).host == SOURCE and claims(engine, inst) == {SOURCE}


def test_migrate__no_valid_host_restores_the_original_vm_state_and_explains(engine: Engine) -> None:
    inst = engine.boot()
    set_fields(engine, inst, vm_state=VmState.STOPPED, power_state=PowerState.SHUTDOWN)
    others = [h.name for h in engine.store.list_hosts() if h.name != SOURCE]
    assert set(ALTERNATES) < set(others)
    for host in others:
        engine.fleet.set_host_state(host, enabled=False, disabled_reason="maintenance")
    ctx, m = migrate(engine, inst)
    engine.drain()

    [scheduling] = engine.store.list_events(ctx.request_id)
    assert (scheduling.event, scheduling.result) == ("conductor_migrate_server", "Error")
    assert scheduling.details.startswith("No valid host was found. There are not enough hosts available.\n"
                                         "Rejected: ")
    for host in others:
        assert f"{host}: ComputeFilter: service disabled (maintenance)" in scheduling.details
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.power_state) == (VmState.STOPPED, None, PowerState.SHUTDOWN)
    assert migration(engine, m).status == MigrationStatus.ERROR
    action = engine.store.get_action(ctx.request_id)
    assert action.message == "Error" and action.finish_time


# ---- failures after scheduling roll back to the source -------------------------------------------
@pytest.mark.parametrize("operation", ["cold_migration", "finish_migration"])
def test_migrate__copy_or_finish_failure_puts_the_server_back_on_its_source(engine: Engine, operation: str) -> None:
    inst = engine.boot()
    engine.fleet.add_fault(operation, message=f"{operation} broke")
    ctx, m = migrate(engine, inst)
    engine.drain()

    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.power_state) == (VmState.ACTIVE, None, PowerState.RUNNING)
    assert (after.host, after.node) == (SOURCE, SOURCE)
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert migration(engine, m).status == MigrationStatus.ERROR
    failed = [e for e in engine.store.list_events(ctx.request_id) if e.result == "Error"]
    assert [(e.event, e.details) for e in failed] == [
        ("compute_resize_instance" if operation == "cold_migration" else "compute_finish_resize",
         f"{operation} broke")]


def test_migrate__delete_during_the_migration_leaves_no_claim(engine: Engine) -> None:
    inst = engine.boot()
    _, m = migrate(engine, inst)
    delete_server(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    assert server(engine, inst).deleted
    assert claims(engine, inst) == set() and usage(engine) == {}
    assert migration(engine, m).status == MigrationStatus.ERROR


def test_migrate__crash_inside_the_copy_resumes_and_copies_once(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    crash_once_after(monkeypatch, CopyDiskAndPowerOff, "start")
    ctx, m = migrate(engine, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.reaper.sweep(now=time.time() + 3600) == [ctx.request_id]
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    assert engine.fleet.operation_count("cold_migration") == 1
    assert [e[0] for e in events(engine, ctx.request_id)] == MIGRATE_EVENTS
    assert claims(engine, inst) == {SOURCE, "compute-kvm-1"}
