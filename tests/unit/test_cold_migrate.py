"""Cold migration, confirmResize, revertResize and cancel on the in-memory engine (real flows, fakeredis).

The fleet: a flavor-2 server boots on compute-kvm-3 (most free RAM); a migration then
tries compute-kvm-1, compute-kvm-2, compute-xen-1 in that order ([scheduler] max_attempts 3).
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from compute import cold_migration, errors
from compute.cold_migration import MigrationStatus
from compute.context import RequestContext
from compute.models import Instance, Migration
from compute.states import PowerState, TaskState, VmState, server_status
from tasks.migrate import CopyDiskAndPowerOff
from tests.unit.conftest import Engine, SimulatedCrash, admin_ctx, demo_ctx

SOURCE = "compute-kvm-3"
ALTERNATES = ["compute-kvm-1", "compute-kvm-2", "compute-xen-1"]
MIGRATE_EVENTS = ["conductor_migrate_server", "cold_migrate", "compute_prep_resize", "compute_resize_instance",
                  "compute_finish_resize"]


# ---- helpers ---------------------------------------------------------------------------------
def events(engine: Engine, request_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(e.event, e.result, e.host) for e in engine.store.list_events(request_id)]


def claims(engine: Engine, inst: Instance) -> set[str]:
    return engine.store.hosts_claimed_by(inst.id)


def usage(engine: Engine) -> dict[str, int]:
    """running_vms per host that has any: a claim counted twice or leaked shows here."""
    return {h.name: u for h in engine.store.list_hosts() if (u := engine.store.get_usage(h.name).running_vms)}


def server(engine: Engine, inst: Instance) -> Instance:
    found = engine.store.get_instance(inst.id)
    assert found is not None
    return found


def migrate(engine: Engine, inst: Instance, host: str | None = None,
            ctx: RequestContext | None = None) -> tuple[RequestContext, Migration]:
    ctx = ctx or admin_ctx()
    migration = cold_migration.migrate(engine.service, ctx, server(engine, inst), host=host)
    return ctx, migration


def migration(engine: Engine, m: Migration) -> Migration:
    found = engine.store.get_migration(m.id)
    assert found is not None
    return found


def resized(engine: Engine, **boot: Any) -> tuple[Instance, Migration]:
    inst = engine.boot(**boot)
    _, m = migrate(engine, inst)
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    return inst, m


def set_fields(engine: Engine, inst: Instance, **changes: Any) -> None:
    engine.store.update_instance(inst.id, lambda i: [setattr(i, k, v) for k, v in changes.items()] and None)


def statuses_written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every migration status written after creation, in order, consecutive repeats folded."""
    seen: list[str] = []
    original = cold_migration.stage_migration

    def spy(store: Any, pipe: Any, m: Migration) -> None:
        if not seen or seen[-1] != m.status:
            seen.append(m.status)
        original(store, pipe, m)

    monkeypatch.setattr(cold_migration, "stage_migration", spy)
    return seen


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
    cold_migration.confirm_resize(engine.service, demo_ctx(), after)
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
    ({"launched_at": None}, "launched_at None"),
])
def test_migrate__wrong_state_is_409(engine: Engine, changes: dict[str, Any], attr: str) -> None:
    inst = engine.boot()
    set_fields(engine, inst, **changes)
    with pytest.raises(errors.InstanceInvalidState) as caught:
        migrate(engine, inst)
    assert caught.value.message == f"Cannot 'migrate' instance {inst.id} while it is in {attr}"


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
    for host in ALTERNATES + ["compute-xen-2"]:
        engine.fleet.set_host_state(host, enabled=False, disabled_reason="maintenance")
    ctx, m = migrate(engine, inst)
    engine.drain()

    [scheduling] = engine.store.list_events(ctx.request_id)
    assert (scheduling.event, scheduling.result) == ("conductor_migrate_server", "Error")
    assert scheduling.details.startswith("No valid host was found. There are not enough hosts available.\n"
                                         "Rejected: ")
    assert "compute-kvm-1: ComputeFilter: service disabled (maintenance)" in scheduling.details
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
    engine.service.delete_server(demo_ctx(), server(engine, inst))
    engine.drain()
    assert server(engine, inst).deleted
    assert claims(engine, inst) == set() and usage(engine) == {}
    assert migration(engine, m).status == MigrationStatus.ERROR


def test_migrate__crash_inside_the_copy_resumes_and_copies_once(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = engine.boot()
    original = CopyDiskAndPowerOff.start

    def start_then_die(self, fc, op_id, migration_, inst_):  # noqa: ANN001, ANN202
        original(self, fc, op_id, migration_, inst_)
        monkeypatch.setattr(CopyDiskAndPowerOff, "start", original)
        raise SimulatedCrash("killed after starting the copy")

    monkeypatch.setattr(CopyDiskAndPowerOff, "start", start_then_die)
    ctx, m = migrate(engine, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.reaper.sweep(now=time.time() + 3600) == [ctx.request_id]
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    assert engine.fleet.operation_count("cold_migration") == 1
    assert [e[0] for e in events(engine, ctx.request_id)] == MIGRATE_EVENTS
    assert claims(engine, inst) == {SOURCE, "compute-kvm-1"}


# ---- confirmResize -------------------------------------------------------------------------------
def test_confirm__releases_the_source_claim_and_finishes_active(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst, m = resized(engine)
    written = statuses_written(monkeypatch)
    ctx = demo_ctx()
    cold_migration.confirm_resize(engine.service, ctx, server(engine, inst))
    during = server(engine, inst)
    assert (during.vm_state, during.task_state) == (VmState.RESIZED, None)  # still VERIFY_RESIZE
    engine.drain()

    assert written == ["confirming", "confirmed"]
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, "compute-kvm-1")
    assert claims(engine, inst) == {"compute-kvm-1"} and usage(engine) == {"compute-kvm-1": 1}
    assert events(engine, ctx.request_id) == [("compute_confirm_resize", "Success", SOURCE)]
    assert [op["host"] for op in engine.fleet.operations("confirm_migration")] == [SOURCE]
    action = engine.store.get_action(ctx.request_id)
    assert (action.action, action.user_id, action.message) == ("confirmResize", "demo", None)


def test_confirm__not_resized_is_409_and_no_finished_migration_is_400(engine: Engine) -> None:
    inst = engine.boot()
    with pytest.raises(errors.InstanceInvalidState) as caught:
        cold_migration.confirm_resize(engine.service, demo_ctx(), inst)
    assert caught.value.message == f"Cannot 'confirm_resize' instance {inst.id} while it is in vm_state active"
    set_fields(engine, inst, vm_state=VmState.RESIZED)
    with pytest.raises(errors.Invalid, match="^Instance has not been resized.$"):
        cold_migration.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["create"]


def test_confirm__source_compute_down_is_409_and_the_migration_stays_finished(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.set_host_state(SOURCE, up=False)
    with pytest.raises(errors.Conflict, match="Service is unavailable"):
        cold_migration.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    assert migration(engine, m).status == MigrationStatus.FINISHED


def test_confirm__driver_failure_leaves_it_resized_and_confirmable(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.add_fault("confirm_migration", times=1, message="source disk busy")
    ctx = demo_ctx()
    cold_migration.confirm_resize(engine.service, ctx, server(engine, inst))
    engine.drain()
    assert migration(engine, m).status == MigrationStatus.FINISHED
    assert server(engine, inst).vm_state == VmState.RESIZED
    assert claims(engine, inst) == {SOURCE, "compute-kvm-1"}
    assert events(engine, ctx.request_id) == [("compute_confirm_resize", "Error", SOURCE)]
    cold_migration.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    assert migration(engine, m).status == MigrationStatus.CONFIRMED
    assert claims(engine, inst) == {"compute-kvm-1"}


def test_confirm__twice_records_one_confirm(engine: Engine) -> None:
    inst, _ = resized(engine)
    cold_migration.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    with pytest.raises(errors.Invalid, match="Instance has not been resized."):
        cold_migration.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    assert [a.action for a in engine.store.list_actions(inst.id)].count("confirmResize") == 1
    assert engine.fleet.operation_count("confirm_migration") == 1


# ---- revertResize --------------------------------------------------------------------------------
def test_revert__shows_revert_resize_then_returns_to_the_source(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst, m = resized(engine)
    written = statuses_written(monkeypatch)
    ctx = demo_ctx()
    cold_migration.revert_resize(engine.service, ctx, server(engine, inst))
    during = server(engine, inst)
    assert server_status(during.vm_state, during.task_state) == "REVERT_RESIZE"
    engine.drain()

    assert written == ["reverting", "reverted"]
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.power_state) == (VmState.ACTIVE, None, PowerState.RUNNING)
    assert (after.host, after.node) == (SOURCE, SOURCE)
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert events(engine, ctx.request_id) == [("compute_revert_resize", "Success", "compute-kvm-1"),
                                              ("compute_finish_revert_resize", "Success", SOURCE)]
    assert [op["host"] for op in engine.fleet.operations("destroy")] == ["compute-kvm-1"]
    assert [op["host"] for op in engine.fleet.operations("finish_revert_migration")] == [SOURCE]


def test_revert__of_a_stopped_server_ends_stopped(engine: Engine) -> None:
    inst = engine.boot()
    set_fields(engine, inst, vm_state=VmState.STOPPED, power_state=PowerState.SHUTDOWN)
    migrate(engine, inst)
    engine.drain()
    cold_migration.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.power_state, after.host) == (VmState.STOPPED, PowerState.SHUTDOWN, SOURCE)


def test_revert__destination_failure_goes_back_to_verify_resize(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.add_fault("destroy", host="compute-kvm-1", times=1, message="hypervisor unreachable")
    cold_migration.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.RESIZED, None, "compute-kvm-1")
    assert migration(engine, m).status == MigrationStatus.FINISHED
    assert claims(engine, inst) == {SOURCE, "compute-kvm-1"}


def test_revert__source_failure_after_the_copy_is_gone_is_error_on_the_source(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.add_fault("finish_revert_migration", message="cannot power on")
    cold_migration.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ERROR, None, SOURCE)
    assert after.fault["message"] == "cannot power on"
    assert migration(engine, m).status == MigrationStatus.ERROR
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}


def test_confirm_and_revert__whoever_comes_second_is_refused(engine: Engine) -> None:
    inst, _ = resized(engine)
    cold_migration.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    with pytest.raises(errors.InstanceInvalidState, match="task_state resize_reverting"):
        cold_migration.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()

    other, _ = resized(engine, name="other")
    cold_migration.confirm_resize(engine.service, demo_ctx(), server(engine, other))
    with pytest.raises(errors.Invalid, match="Instance has not been resized."):
        cold_migration.revert_resize(engine.service, demo_ctx(), server(engine, other))


@pytest.mark.parametrize("first, second", [("confirm_resize", "revert_resize"), ("revert_resize", "confirm_resize"),
                                           ("confirm_resize", "confirm_resize")])
def test_confirm_and_revert__one_overtaken_between_its_read_and_its_write_is_refused(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, first: str, second: str) -> None:
    inst, m = resized(engine)
    original = cold_migration.finished_migration

    def overtaken(store: Any, instance_id: str) -> Migration | None:
        found = original(store, instance_id)
        monkeypatch.setattr(cold_migration, "finished_migration", original)
        getattr(cold_migration, first)(engine.service, demo_ctx(), server(engine, inst))
        return found

    monkeypatch.setattr(cold_migration, "finished_migration", overtaken)
    with pytest.raises((errors.Invalid, errors.InstanceInvalidState)):
        getattr(cold_migration, second)(engine.service, admin_ctx(), server(engine, inst))
    engine.drain()
    names = [a.action for a in engine.store.list_actions(inst.id)]
    assert names == [{"confirm_resize": "confirmResize", "revert_resize": "revertResize"}[first], "migrate", "create"]
    assert migration(engine, m).status == (MigrationStatus.CONFIRMED if first == "confirm_resize"
                                           else MigrationStatus.REVERTED)


def test_delete_of_a_resized_server_releases_both_claims(engine: Engine) -> None:
    inst, _ = resized(engine)
    engine.service.delete_server(demo_ctx(), server(engine, inst))
    engine.drain()
    assert claims(engine, inst) == set() and usage(engine) == {}


# ---- cancel --------------------------------------------------------------------------------------
def test_cancel__before_scheduling_rolls_back_and_is_its_own_action(engine: Engine) -> None:
    inst = engine.boot()
    migrate_ctx, m = migrate(engine, inst)
    cancel_ctx = admin_ctx()
    cold_migration.cancel_migration(engine.service, cancel_ctx, server(engine, inst), m.id)
    assert migration(engine, m).status == MigrationStatus.CANCELLING
    engine.drain()

    assert migration(engine, m).status == MigrationStatus.CANCELLED
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, SOURCE)
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["cold_migration_cancel", "migrate", "create"]
    cancel = engine.store.get_action(cancel_ctx.request_id)
    assert cancel.message is None and cancel.finish_time
    assert events(engine, cancel_ctx.request_id) == [
        ("conductor_cold_migration_cancel", "Success", "compute-actions")]
    [scheduling] = engine.store.list_events(migrate_ctx.request_id)
    assert scheduling.result == "Error" and "cancelled by an administrator" in scheduling.details
    assert engine.fleet.operation_count("cold_migration") == 0


def test_cancel__while_the_destination_is_claimed_releases_it(engine: Engine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The cancel lands inside prep_resize, after the claim on the destination: the copy never starts."""
    inst = engine.boot()
    _, m = migrate(engine, inst)
    original = engine.fleet.prep_resize
    seen_claims: list[set[str]] = []

    def prep_then_cancel(dest: str, instance: Instance) -> None:
        seen_claims.append(claims(engine, inst))
        monkeypatch.setattr(engine.fleet, "prep_resize", original)
        cold_migration.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
        original(dest, instance)

    monkeypatch.setattr(engine.fleet, "prep_resize", prep_then_cancel)
    engine.drain()
    assert seen_claims == [{SOURCE, "compute-kvm-1"}]
    assert migration(engine, m).status == MigrationStatus.CANCELLED
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert server(engine, inst).task_state is None
    assert engine.fleet.operation_count("cold_migration") == 0


def test_cancel__after_the_copy_began_is_409_and_changes_nothing(engine: Engine) -> None:
    engine.fleet.set_durations({"cold_migration_per_gb": 10.0})
    inst = engine.boot()
    _, m = migrate(engine, inst)
    while migration(engine, m).status == MigrationStatus.PRE_MIGRATING:
        engine.runner.run(*engine.queue.pop())
    assert migration(engine, m).status == MigrationStatus.MIGRATING
    with pytest.raises(errors.InstanceInvalidState) as caught:
        cold_migration.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
    assert caught.value.message == (f"Cannot 'cancel_migration' instance {inst.id} while it is in "
                                    "task_state resize_migrating")
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["migrate", "create"]


def test_cancel__twice_is_400_the_second_time(engine: Engine) -> None:
    inst = engine.boot()
    _, m = migrate(engine, inst)
    cold_migration.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
    with pytest.raises(errors.Invalid) as caught:
        cold_migration.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
    assert caught.value.message == (f"Migration {m.id} state of instance {inst.id} is cancelling. "
                                    "Cannot cancel_migration while the migration is in this state.")
    engine.drain()
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["cold_migration_cancel", "migrate", "create"]


def test_cancel__unknown_or_foreign_migration_is_404_and_idle_server_409(engine: Engine) -> None:
    inst = engine.boot()
    other = engine.boot(name="other")
    _, m = migrate(engine, inst)
    for bad in (m.id + 100, "x", "-1"):
        with pytest.raises(errors.NotFound, match=f"Migration {bad} not found for instance {inst.id}"):
            cold_migration.cancel_migration(engine.service, admin_ctx(), server(engine, inst), bad)
    with pytest.raises(errors.InstanceInvalidState, match="task_state None"):
        cold_migration.cancel_migration(engine.service, admin_ctx(), other, m.id)


def test_cancel__locked_server_is_409_for_a_member(engine: Engine) -> None:
    inst = engine.boot()
    _, m = migrate(engine, inst)
    set_fields(engine, inst, locked=True)
    with pytest.raises(errors.InstanceIsLocked):
        cold_migration.cancel_migration(engine.service, demo_ctx(), server(engine, inst), m.id)
    assert migration(engine, m).status == MigrationStatus.PRE_MIGRATING
