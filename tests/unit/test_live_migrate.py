"""Live migration through the real engine on fakeredis: scheduling, retries, checks, copy, rollback, controls.

Servers boot on compute-kvm-1 (QEMU 8002000, Haswell, ceph-a). From there the weigher
(most free RAM) ranks compute-kvm-3 (nfs-b: block migration) before compute-kvm-2
(ceph-a: shared storage); the xen hosts are filtered out by hypervisor type.
"""
from __future__ import annotations

import json
import time
from typing import Any

import pytest

from compute import errors, scheduler
from compute import live_migration as lm
from compute.models import Host, Instance
from compute.states import PowerState, VmState, server_status
from tasks import live_migrate as flow
from tests.unit.conftest import Engine, SimulatedCrash, admin_ctx, demo_ctx

SOURCE = "compute-kvm-1"
EVENTS_OK = ["conductor_live_migrate_instance", "compute_check_can_live_migrate_destination",
             "compute_check_can_live_migrate_source", "compute_live_migration", "compute_pre_live_migration",
             "compute_post_live_migration_at_destination"]


def boot_on_source(engine: Engine, **changes: Any) -> Instance:
    inst = engine.boot(availability_zone=f"nova:{SOURCE}", ctx=admin_ctx())
    assert inst.host == SOURCE and inst.vm_state == VmState.ACTIVE
    if changes:
        engine.store.update_instance(inst.id, lambda i: [setattr(i, k, v) for k, v in changes.items()])
    return engine.store.get_instance(inst.id)


def migrate(engine: Engine, inst: Instance, *, host: str | None = None, block: bool | None = None,
            force: bool = False, before_reply: bool = False, ctx: Any = None, **extra: Any) -> tuple[str, Any]:
    ctx = ctx or admin_ctx()
    request = lm.LiveMigrationRequest(host=host, block_migration=block, force=force,
                                      checks_before_reply=before_reply, **extra)
    migration = lm.live_migrate(engine.service, ctx, engine.store.get_instance(inst.id), request)
    return ctx.request_id, migration


def add_host(engine: Engine, name: str, **fields: Any) -> None:
    base = engine.store.get_host("compute-kvm-2").model_dump()
    base.update(name=name, **fields)
    engine.store.put_host(Host(**base))


def deliver_until(engine: Engine, done: Any, limit: int = 200) -> None:
    for _ in range(limit):
        if done():
            return
        engine.runner.run(*engine.queue.pop())
    raise AssertionError("condition not reached")


def status_of(engine: Engine, migration: Any) -> str:
    return engine.store.get_migration(migration.id).status


def events(engine: Engine, request_id: str) -> list[Any]:
    return engine.store.list_events(request_id)


def assert_claims_follow_servers(engine: Engine) -> None:
    """Every host's usage is exactly the flavors of the servers on it, and nothing else is claimed."""
    servers = [i for i in engine.store.list_instances() if not i.deleted]
    for host in engine.store.list_hosts():
        mine = [i for i in servers if i.host == host.name]
        usage = engine.store.get_usage(host.name)
        assert engine.store.claims_on_host(host.name) == {i.id for i in mine}, host.name
        assert (usage.vcpus_used, usage.memory_mb_used, usage.local_gb_used, usage.running_vms) == (
            sum(i.flavor.vcpus for i in mine), sum(i.flavor.ram for i in mine),
            sum(i.flavor.total_disk_gb for i in mine), len(mine)), host.name


# ---- the happy path ----------------------------------------------------------------------------
def test_live_migrate__walks_the_statuses_and_moves_host_node_and_claim(engine: Engine) -> None:
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)

    accepted = engine.store.get_instance(inst.id)
    assert (accepted.task_state, server_status(accepted.vm_state, accepted.task_state)) == ("migrating", "MIGRATING")
    record = engine.store.get_migration(migration.id)
    assert (record.status, record.migration_type, record.source_compute, record.dest_compute) == (
        "accepted", "live-migration", SOURCE, None)
    assert (record.old_instance_type_id, record.request_id) == ("2", rid)

    seen = []
    deliver_until(engine, lambda: seen.append(status_of(engine, migration)) or not engine.queue.pending)
    assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == ["accepted", "running", "completed"]

    done = engine.store.get_instance(inst.id)
    assert (done.host, done.node, done.vm_state, done.task_state, done.progress) == (
        "compute-kvm-3", "compute-kvm-3", "active", None, 0)
    record = engine.store.get_migration(migration.id)
    assert (record.status, record.dest_compute, record.dest_node, record.dest_host) == (
        "completed", "compute-kvm-3", "compute-kvm-3", "192.0.2.13")
    assert record.memory_total_bytes == 2048 << 20 and record.memory_remaining_bytes == 0
    assert record.disk_total_bytes == 20 << 30 and record.disk_processed_bytes == 20 << 30  # nfs-b: block
    assert_claims_follow_servers(engine)
    assert [e.event for e in events(engine, rid)] == EVENTS_OK
    assert all(e.result == "Success" for e in events(engine, rid))
    action = engine.store.get_action(rid)
    assert (action.action, action.message) == ("live-migration", None) and action.finish_time


def test_live_migrate__event_hosts_are_the_ones_that_did_the_work(engine: Engine) -> None:
    inst = boot_on_source(engine)
    rid, _ = migrate(engine, inst)
    engine.drain()
    hosts = {e.event: e.host for e in events(engine, rid)}
    assert hosts == {"conductor_live_migrate_instance": "compute-actions",
                     "compute_check_can_live_migrate_destination": "compute-kvm-3",
                     "compute_check_can_live_migrate_source": SOURCE, "compute_live_migration": SOURCE,
                     "compute_pre_live_migration": "compute-kvm-3",
                     "compute_post_live_migration_at_destination": "compute-kvm-3"}


def test_live_migrate__auto_is_shared_storage_to_a_host_of_the_same_group(engine: Engine) -> None:
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst, host="compute-kvm-2")
    engine.drain()
    record = engine.store.get_migration(migration.id)
    assert (record.status, record.dest_compute, record.disk_total_bytes) == ("completed", "compute-kvm-2", 0)


def test_live_migrate__a_paused_server_moves_and_stays_paused(engine: Engine) -> None:
    inst = boot_on_source(engine, vm_state=VmState.PAUSED, power_state=PowerState.PAUSED)
    migrate(engine, inst)
    during = engine.store.get_instance(inst.id)
    assert server_status(during.vm_state, during.task_state) == "MIGRATING"
    engine.drain()
    after = engine.store.get_instance(inst.id)
    assert (after.vm_state, after.task_state, after.host) == ("paused", None, "compute-kvm-3")


def test_live_migrate__progress_is_shown_while_copying(engine: Engine) -> None:
    engine.fleet.set_durations({"live_migration_per_gb": 1.0})  # 22 s of copy
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: engine.store.get_instance(inst.id).progress > 0)
    record = engine.store.get_migration(migration.id)
    assert record.status == "running"
    assert 0 < record.memory_processed_bytes < record.memory_total_bytes
    assert record.memory_processed_bytes + record.memory_remaining_bytes == record.memory_total_bytes
    assert engine.store.get_instance(inst.id).progress < 100


# ---- destinations: filters, retries, the explanation ------------------------------------------------
def test_retries__two_destinations_fail_their_check_and_the_third_is_taken(engine: Engine) -> None:
    add_host(engine, "compute-kvm-4", memory_mb=32768, host_ip="192.0.2.14")
    engine.fleet.add_fault("check_can_live_migrate_destination", host="compute-kvm-3", message="no shared CPU flags")
    engine.fleet.add_fault("check_can_live_migrate_destination", host="compute-kvm-2", message="disk is read-only")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()

    assert engine.store.get_instance(inst.id).host == "compute-kvm-4"
    assert status_of(engine, migration) == "completed"
    checks = [(e.event, e.host, e.result, e.details) for e in events(engine, rid)
              if e.event.startswith("compute_check")]
    assert checks == [
        ("compute_check_can_live_migrate_destination", "compute-kvm-3", "Error", "no shared CPU flags"),
        ("compute_check_can_live_migrate_destination", "compute-kvm-2", "Error", "disk is read-only"),
        ("compute_check_can_live_migrate_destination", "compute-kvm-4", "Success", None),
        ("compute_check_can_live_migrate_source", SOURCE, "Success", None)]
    [conductor] = [e for e in events(engine, rid) if e.event == "conductor_live_migrate_instance"]
    assert conductor.result == "Success"
    assert conductor.details == (
        "Chose compute-kvm-4. Rejected: "
        "compute-kvm-1: the server's current host; "
        "compute-kvm-2: compute_check_can_live_migrate_destination failed: disk is read-only; "
        "compute-kvm-3: compute_check_can_live_migrate_destination failed: no shared CPU flags; "
        "compute-xen-1: HypervisorTypeFilter: xen, the source is QEMU; "
        "compute-xen-2: HypervisorTypeFilter: xen, the source is QEMU")
    assert engine.store.get_action(rid).message is None
    assert_claims_follow_servers(engine)


def test_retries__max_retries_one_fails_with_novas_message_and_leaves_the_server_where_it_was(
        engine: Engine) -> None:
    engine.settings.conductor.migrate_max_retries = 1
    add_host(engine, "compute-kvm-4", memory_mb=32768)
    for host in ("compute-kvm-3", "compute-kvm-2"):
        engine.fleet.add_fault("check_can_live_migrate_destination", host=host, message=f"{host} says no")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()

    after = engine.store.get_instance(inst.id)
    assert (after.host, after.node, after.vm_state, after.task_state) == (SOURCE, SOURCE, "active", None)
    assert server_status(after.vm_state, after.task_state) == "ACTIVE"
    assert status_of(engine, migration) == "error"
    [conductor] = [e for e in events(engine, rid) if e.event == "conductor_live_migrate_instance"]
    message = (f"Exceeded maximum number of retries. Exceeded max scheduling retries 2 for instance {inst.id} "
               "during live migration")
    assert conductor.result == "Error" and conductor.details.startswith(message + "\n")
    assert ("compute-kvm-2: compute_check_can_live_migrate_destination failed: compute-kvm-2 says no"
            in conductor.details)
    assert lm.public_reason(conductor.details) == message
    assert [e.host for e in events(engine, rid) if e.event == "compute_check_can_live_migrate_destination"] == [
        "compute-kvm-3", "compute-kvm-2"]
    assert engine.store.get_action(rid).message == "Error"
    assert after.fault["message"] == message
    assert_claims_follow_servers(engine)


def test_retries__no_host_left_is_no_valid_host_with_every_reason(engine: Engine) -> None:
    engine.fleet.set_host_state("compute-kvm-2", enabled=False, disabled_reason="maintenance")
    engine.store.update_host("compute-kvm-3", cpu_model="Nehalem")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    [conductor] = [e for e in events(engine, rid) if e.event == "conductor_live_migrate_instance"]
    assert lm.public_reason(conductor.details) == "No valid host was found. There are not enough hosts available."
    assert "compute-kvm-2: ComputeFilter: service disabled (maintenance)" in conductor.details
    assert ("compute-kvm-3: CPUModelFilter: Nehalem cannot run a guest using the source's Haswell"
            in conductor.details)
    assert status_of(engine, migration) == "error"
    assert engine.store.get_instance(inst.id).host == SOURCE
    assert_claims_follow_servers(engine)


def test_filters__older_hypervisor_and_other_type_are_rejected(engine: Engine) -> None:
    source = engine.store.get_host(SOURCE)
    older = source.model_copy(update={"name": "old", "hypervisor_version": 7000000})
    xen = source.model_copy(update={"name": "x", "hypervisor_type": "xen"})
    newer_cpu = source.model_copy(update={"name": "n", "cpu_model": "Skylake-Server"})
    empty = engine.store.get_usage("nowhere")
    filters = lm.destination_filters(source, {"tried": "it failed"})
    reasons = {h.name: [r for f in filters if (r := f(h, empty))] for h in (older, xen, newer_cpu, source)}
    assert reasons == {"old": ["HypervisorVersionFilter: version 7000000 is older than the source's 8002000"],
                       "x": ["HypervisorTypeFilter: xen, the source is QEMU"], "n": [],
                       SOURCE: ["the server's current host"]}
    assert lm.cpu_can_host("Skylake-Server", "Haswell") and not lm.cpu_can_host("Haswell", "Skylake-Server")
    assert not lm.cpu_can_host("EPYC", "Haswell") and lm.cpu_can_host("mystery", "mystery")


def test_storage__explicit_no_block_skips_a_host_without_shared_storage(engine: Engine) -> None:
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst, block=False)
    engine.drain()
    assert engine.store.get_instance(inst.id).host == "compute-kvm-2"
    source_checks = [(e.host, e.result, e.details) for e in events(engine, rid)
                     if e.event == "compute_check_can_live_migrate_source"]
    assert source_checks == [
        (SOURCE, "Error", "compute-kvm-1 is not on shared storage: Shared storage live-migration requires either "
                          "shared storage or boot-from-volume with no local disks."),
        (SOURCE, "Success", None)]
    assert engine.store.get_migration(migration.id).disk_total_bytes == 0


def test_storage__block_migration_onto_shared_storage_is_invalid(engine: Engine) -> None:
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst, host="compute-kvm-2", block=True, force=True)
    engine.drain()
    assert status_of(engine, migration) == "error"
    assert engine.store.get_instance(inst.id).host == SOURCE
    assert engine.store.get_run(rid).error == (
        "compute-kvm-1 is not on local storage: Block migration can not be used with shared storage.")
    assert_claims_follow_servers(engine)


def test_forced_host__skips_the_scheduler_so_a_disabled_host_is_taken(engine: Engine) -> None:
    engine.fleet.set_host_state("compute-kvm-2", enabled=False, disabled_reason="drain")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst, host="compute-kvm-2", force=True)
    engine.drain()
    assert (status_of(engine, migration), engine.store.get_instance(inst.id).host) == ("completed", "compute-kvm-2")
    [conductor] = [e for e in events(engine, rid) if e.event == "conductor_live_migrate_instance"]
    assert conductor.details == "Chose compute-kvm-2. No other host was considered"
    assert_claims_follow_servers(engine)


def test_requested_host__goes_through_the_filters(engine: Engine) -> None:
    engine.fleet.set_host_state("compute-kvm-2", enabled=False, disabled_reason="drain")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst, host="compute-kvm-2")
    engine.drain()
    assert status_of(engine, migration) == "error"
    assert "compute-kvm-2: ComputeFilter: service disabled (drain)" in engine.store.get_run(rid).error


@pytest.mark.parametrize(("host", "message"), [
    (SOURCE, "Unable to migrate instance ({id}) to current host (compute-kvm-1)."),
    ("compute-xen-1", "The supplied hypervisor type of is invalid."),
])
def test_forced_host__conductor_checks_fail_without_claiming(engine: Engine, host: str, message: str) -> None:
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst, host=host, force=True)
    engine.drain()
    assert engine.store.get_run(rid).error == message.format(id=inst.id)
    assert status_of(engine, migration) == "error"
    assert not [e for e in events(engine, rid) if e.event.startswith("compute_check")]
    assert_claims_follow_servers(engine)


def test_checks__an_unexpected_error_closes_its_event_and_rolls_back(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("a bug in the driver")

    monkeypatch.setattr(engine.fleet, "check_can_live_migrate_source", broken)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "error"
    assert all(e.finish_time for e in events(engine, rid))
    [source_check] = [e for e in events(engine, rid) if e.event == "compute_check_can_live_migrate_source"]
    assert (source_check.result, source_check.details) == ("Error", "RuntimeError")
    assert engine.store.get_instance(inst.id).task_state is None
    assert_claims_follow_servers(engine)


# ---- failures after the checks -----------------------------------------------------------------------
def test_pre_live_migration_failure__rolls_back_at_destination_and_ends_failed(engine: Engine) -> None:
    engine.fleet.add_fault("pre_live_migration", message="VIF plugging timed out")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "failed"
    after = engine.store.get_instance(inst.id)
    assert (after.host, after.vm_state, after.task_state) == (SOURCE, "active", None)
    by_name = {e.event: e for e in events(engine, rid)}
    assert (by_name["compute_pre_live_migration"].result, by_name["compute_pre_live_migration"].details) == (
        "Error", "VIF plugging timed out")
    rollback = by_name["compute_rollback_live_migration_at_destination"]
    assert (rollback.result, rollback.host, rollback.details) == ("Success", "compute-kvm-3", "VIF plugging timed out")
    assert "compute_post_live_migration_at_destination" not in by_name
    assert_claims_follow_servers(engine)


def test_copy_failure__ends_failed_and_gives_the_destination_claim_back(engine: Engine) -> None:
    engine.fleet.add_fault("live_migration", message="libvirt: job failed")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "failed"
    assert engine.store.get_instance(inst.id).host == SOURCE
    assert engine.store.get_run(rid).error == "libvirt: job failed"
    assert_claims_follow_servers(engine)


def test_delete_while_migrating__the_migration_stops_and_nothing_stays_claimed(engine: Engine) -> None:
    slow_copy(engine)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    engine.service.delete_server(admin_ctx(), engine.store.get_instance(inst.id))
    engine.drain()
    gone = engine.store.get_instance(inst.id)
    assert gone.deleted and gone.task_state is None
    assert status_of(engine, migration) == "failed"
    assert engine.store.get_run(rid).error == f"Instance {inst.id} is being deleted"
    assert engine.store.hosts_claimed_by(inst.id) == set()
    assert_claims_follow_servers(engine)


# ---- abort and force-complete --------------------------------------------------------------------
def slow_copy(engine: Engine) -> None:
    engine.fleet.set_durations({"live_migration_per_gb": 100.0})


def test_abort__mid_copy_cancels_the_job_and_rolls_back(engine: Engine) -> None:
    slow_copy(engine)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    ctx = admin_ctx()
    lm.abort(engine.service, ctx, engine.store.get_instance(inst.id), str(migration.id))
    engine.drain()

    assert status_of(engine, migration) == "cancelled"
    after = engine.store.get_instance(inst.id)
    assert (after.host, after.task_state, after.fault) == (SOURCE, None, None)
    [op] = engine.fleet.operations("live_migration")
    assert op["cancelled"]
    [abort_event] = events(engine, ctx.request_id)
    assert (abort_event.event, abort_event.result) == ("compute_live_migration_abort", "Success")
    assert engine.store.get_action(ctx.request_id).action == "live_migration_cancel"
    assert engine.store.get_action(rid).message == "Error"
    assert "compute_rollback_live_migration_at_destination" in [e.event for e in events(engine, rid)]
    assert_claims_follow_servers(engine)


def test_abort__while_preparing_needs_2_65(engine: Engine) -> None:
    engine.fleet.add_fault("pre_live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "preparing")
    current = engine.store.get_instance(inst.id)
    with pytest.raises(lm.InvalidMigrationState, match="is preparing. Cannot abort live migration"):
        lm.abort(engine.service, admin_ctx(), current, str(migration.id))
    lm.abort(engine.service, admin_ctx(), current, str(migration.id), abortable=lm.ABORTABLE_FROM_2_65)
    engine.drain()
    assert status_of(engine, migration) == "cancelled"
    assert engine.store.get_instance(inst.id).host == SOURCE
    assert_claims_follow_servers(engine)


def test_abort__after_completion_reports_that_it_came_too_late(engine: Engine) -> None:
    slow_copy(engine)
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    ctx = admin_ctx()
    lm.abort(engine.service, ctx, engine.store.get_instance(inst.id), str(migration.id))
    engine.store.update_migration(migration.id, lambda m: setattr(m, "status", "completed"))  # it won the race
    [(_, _, abort_rid, wake)] = [m for m in engine.queue.pending if m[2] == ctx.request_id]
    assert engine.runner.run(abort_rid, wake) == "error"  # the abort's delivery comes first
    [event] = events(engine, ctx.request_id)
    assert (event.result, event.details) == (
        "Error", f"Migration {migration.id} state of instance {inst.id} is completed. "
                 "Cannot abort live migration while the migration is in this state.")


def test_force_complete__converges_a_copy_that_would_not_finish(engine: Engine) -> None:
    engine.fleet.add_fault("live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    ctx = admin_ctx()
    lm.force_complete(engine.service, ctx, engine.store.get_instance(inst.id), str(migration.id))
    engine.drain()
    assert status_of(engine, migration) == "completed"
    assert engine.store.get_instance(inst.id).host == "compute-kvm-3"
    [event] = events(engine, ctx.request_id)
    assert (event.event, event.result) == ("compute_live_migration_force_complete", "Success")
    assert engine.store.get_action(ctx.request_id).action == "live_migration_force_complete"
    assert_claims_follow_servers(engine)


def test_force_complete__only_while_running(engine: Engine) -> None:
    engine.fleet.add_fault("pre_live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "preparing")
    current = engine.store.get_instance(inst.id)
    with pytest.raises(errors.Invalid, match="is preparing. Cannot force complete"):
        lm.force_complete(engine.service, admin_ctx(), current, str(migration.id))
    with pytest.raises(errors.Invalid, match=f"Migration 999 not found for instance {inst.id}"):
        lm.force_complete(engine.service, admin_ctx(), current, "999")
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["live-migration", "create"]


def test_controls__need_the_server_migrating_and_unlocked_for_non_admins(engine: Engine) -> None:
    inst = boot_on_source(engine)
    with pytest.raises(errors.InstanceInvalidState, match="Cannot 'force_complete' instance .* task_state None"):
        lm.force_complete(engine.service, admin_ctx(), inst, "1")
    with pytest.raises(errors.InstanceInvalidState, match="Cannot 'abort live migration' instance"):
        lm.abort(engine.service, admin_ctx(), inst, "1")
    _, migration = migrate(engine, inst)
    engine.store.update_instance(inst.id, lambda i: setattr(i, "locked", True))
    with pytest.raises(errors.InstanceIsLocked):
        lm.abort(engine.service, demo_ctx(), engine.store.get_instance(inst.id), str(migration.id))
    with pytest.raises(lm.MigrationNotFoundForInstance):
        lm.abort(engine.service, admin_ctx(), engine.store.get_instance(inst.id), "424242")


# ---- the completion timeout ------------------------------------------------------------------------
def test_completion_timeout__abort_cancels_the_migration(engine: Engine) -> None:
    engine.settings.libvirt.live_migration_completion_timeout = 1  # 1 s per GiB: 22 s for 2 GiB RAM + 20 GiB disk
    engine.fleet.add_fault("live_migration", mode="hang")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "cancelled"
    assert engine.store.get_instance(inst.id).host == SOURCE
    reason = "Live migration not completed after 22 sec; aborted ([libvirt] live_migration_timeout_action = abort)"
    assert engine.store.get_run(rid).error == reason
    rollback = [e for e in events(engine, rid) if e.event == "compute_rollback_live_migration_at_destination"]
    assert [e.details for e in rollback] == [reason]
    assert_claims_follow_servers(engine)


def test_completion_timeout__force_complete_finishes_the_migration(engine: Engine) -> None:
    engine.settings.libvirt.live_migration_completion_timeout = 1
    engine.settings.libvirt.live_migration_timeout_action = "force_complete"
    engine.fleet.add_fault("live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "completed"
    assert engine.store.get_instance(inst.id).host == "compute-kvm-3"
    assert json.loads(engine.store.r.get(engine.store.k("fleet", "op", f"{migration.request_id}:live_migration"))
                      )["force_complete"] is True


# ---- the synchronous checks ----------------------------------------------------------------------
def test_accept__checks_lock_state_host_and_source_in_novas_order(engine: Engine) -> None:
    inst = boot_on_source(engine, locked=True, vm_state=VmState.STOPPED)
    with pytest.raises(errors.InstanceIsLocked):
        migrate(engine, inst, ctx=demo_ctx())
    with pytest.raises(errors.InstanceInvalidState, match="Cannot 'os-migrateLive' instance .* vm_state stopped"):
        migrate(engine, inst)
    engine.store.update_instance(inst.id, lambda i: setattr(i, "vm_state", VmState.ACTIVE))
    with pytest.raises(errors.Invalid, match="^Compute host nowhere could not be found.$"):
        migrate(engine, inst, host="nowhere")
    engine.fleet.set_host_state(SOURCE, up=False)
    with pytest.raises(errors.Conflict, match="^Service is unavailable at this time.$"):
        migrate(engine, inst)
    assert engine.store.list_migrations(inst.id) == []
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["create"]
    engine.fleet.set_host_state(SOURCE, up=True)
    _, migration = migrate(engine, inst)  # admins pass the lock
    with pytest.raises(errors.InstanceInvalidState, match="task_state migrating"):
        migrate(engine, inst)
    assert engine.store.list_migrations(inst.id) == [engine.store.get_migration(migration.id)]


def test_accept__a_refused_enqueue_undoes_everything(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = boot_on_source(engine)

    def refuse(*_: Any, **__: Any) -> None:
        raise errors.QueueUnavailable("broker down")

    monkeypatch.setattr(engine.queue, "enqueue", refuse)
    with pytest.raises(errors.QueueUnavailable):
        migrate(engine, inst)
    after = engine.store.get_instance(inst.id)
    assert after.task_state is None
    [migration] = engine.store.list_migrations(inst.id)
    assert migration.status == "error"
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["create"]


def test_before_reply__the_conductor_event_has_the_pre_2_34_name(engine: Engine) -> None:
    inst = boot_on_source(engine)
    rid, _ = migrate(engine, inst, before_reply=True)
    engine.drain()
    assert [e.event for e in events(engine, rid)][0] == "conductor_migrate_server"


def test_disk_over_commit__below_2_25_a_block_migration_checks_the_destination_disk(engine: Engine) -> None:
    inst = boot_on_source(engine)  # m1.small: 20 GB of disk
    engine.store.update_host("compute-kvm-3", local_gb=30, disk_allocation_ratio=2.0)
    engine.store.claim_resources("compute-kvm-3", "squatter", engine.store.get_flavor("3"))  # 40 GB, overcommitted
    rid, migration = migrate(engine, inst, host="compute-kvm-3", force=True, disk_over_commit=False)
    engine.drain()
    assert status_of(engine, migration) == "error"
    assert engine.store.get_run(rid).error == (
        f"Migration pre-check error: Unable to migrate {inst.id}: "
        "Disk of instance is too large(available on destination host:-10 < need:20)")
    assert_claims_follow_servers_but(engine, squatter_on="compute-kvm-3")

    inst = engine.store.get_instance(inst.id)
    rid, migration = migrate(engine, inst, host="compute-kvm-3", force=True, disk_over_commit=True)
    engine.drain()
    assert status_of(engine, migration) == "completed"  # 30 * 2.0 - 40 = 20 GB over-committed room


def assert_claims_follow_servers_but(engine: Engine, squatter_on: str) -> None:
    engine.store.release_claim(squatter_on, "squatter")
    assert_claims_follow_servers(engine)
    engine.store.claim_resources(squatter_on, "squatter", engine.store.get_flavor("3"))


# ---- a worker dying inside the flow ------------------------------------------------------------------
def test_crash__between_the_claim_and_its_commit_leaves_no_stray_claim(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    real = scheduler.claim_first_fit

    def claim_then_die(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(scheduler, "claim_first_fit", real)
        real(*args, **kwargs)
        raise SimulatedCrash("killed after the claim")

    inst = boot_on_source(engine)
    monkeypatch.setattr(scheduler, "claim_first_fit", claim_then_die)
    rid, migration = migrate(engine, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.store.hosts_claimed_by(inst.id) == {SOURCE, "compute-kvm-3"}  # claimed, never recorded
    engine.fleet.set_host_state("compute-kvm-3", enabled=False)  # the resumed search must go elsewhere
    assert engine.reaper.sweep(now=time.time() + 3600) == [rid]
    engine.drain()
    assert status_of(engine, migration) == "completed"
    assert engine.store.get_instance(inst.id).host == "compute-kvm-2"
    assert_claims_follow_servers(engine)


def test_crash__inside_the_destination_check_resumes_with_the_recorded_claim(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine.fleet.check_can_live_migrate_destination

    def die_once(*args: Any) -> None:
        monkeypatch.setattr(engine.fleet, "check_can_live_migrate_destination", real)
        raise SimulatedCrash("killed inside the check")

    monkeypatch.setattr(engine.fleet, "check_can_live_migrate_destination", die_once)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.reaper.sweep(now=time.time() + 3600) == [rid]
    engine.drain()
    assert (status_of(engine, migration), engine.store.get_instance(inst.id).host) == ("completed", "compute-kvm-3")
    checks = [(e.host, e.result) for e in events(engine, rid)
              if e.event == "compute_check_can_live_migrate_destination"]
    assert checks == [("compute-kvm-3", "Success")]  # one attempt, repeated in place
    assert_claims_follow_servers(engine)


def test_crash__a_copy_that_keeps_killing_its_worker_is_abandoned_and_rolled_back(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def die(self: Any, fc: Any) -> None:
        raise SimulatedCrash("killed inside the copy")

    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    monkeypatch.setattr(flow.TransferGuest, "execute", die)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    for round_ in range(1, engine.settings.engine.max_reaps + 1):
        assert engine.reaper.sweep(now=time.time() + 3600 * round_) == [rid]
        with pytest.raises(SimulatedCrash):
            engine.drain()
    assert engine.reaper.sweep(now=time.time() + 3600 * 10) == [rid]
    engine.drain()
    assert engine.store.get_run(rid).status == "error"
    assert status_of(engine, migration) == "error"  # as Nova's _reset_live_migration leaves it
    after = engine.store.get_instance(inst.id)
    assert (after.host, after.task_state) == (SOURCE, None)
    assert_claims_follow_servers(engine)
