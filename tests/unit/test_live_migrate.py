"""Live migration through the real engine on fakeredis: the happy path, destinations, the synchronous checks.

Servers boot on compute-kvm-1 (QEMU 8002000, Haswell, ceph-a). From there the weigher
(most free RAM) ranks compute-kvm-3 (nfs-b: block migration) before compute-kvm-2
(ceph-a: shared storage); the xen hosts are filtered out by hypervisor type.
Failures, timeouts and crashes: test_live_migrate_failures.py; abort and force-complete have
their own files; the helpers are in tests/unit/live_migration_helpers.py.
"""
from __future__ import annotations

from typing import Any

import pytest

from compute import errors, migration_checks, scheduler
from compute.states import PowerState, VmState, server_status
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import demo_ctx
from tests.support.engine import Engine, deliver_until
from tests.unit.live_migration_helpers import (
    SOURCE,
    boot_on_source,
    events,
    migrate,
    status_of,
)

EVENTS_OK = ["conductor_live_migrate_instance", "compute_check_can_live_migrate_destination",
             "compute_check_can_live_migrate_source", "compute_live_migration", "compute_pre_live_migration",
             "compute_post_live_migration_at_destination"]


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
    assert_claims_follow_servers(engine.store)
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
    # From compute-kvm-1 the weigher ranks kvm-3, then kvm-2, kvm-4, kvm-5 (equal free RAM, by name).
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
    assert_claims_follow_servers(engine.store)


def test_retries__max_retries_one_fails_with_novas_message_and_leaves_the_server_where_it_was(
        engine: Engine) -> None:
    engine.settings.conductor.migrate_max_retries = 1  # compute-kvm-4 and -5 would take it, but are never tried
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
    assert scheduler.public_reason(conductor.details) == message
    assert [e.host for e in events(engine, rid) if e.event == "compute_check_can_live_migrate_destination"] == [
        "compute-kvm-3", "compute-kvm-2"]
    assert engine.store.get_action(rid).message == "Error"
    assert after.fault["message"] == message
    assert_claims_follow_servers(engine.store)


def test_retries__no_host_left_is_no_valid_host_with_every_reason(engine: Engine) -> None:
    engine.fleet.set_host_state("compute-kvm-2", enabled=False, disabled_reason="maintenance")
    engine.store.update_host("compute-kvm-3", cpu_model="Nehalem")
    engine.fleet.set_host_state("compute-kvm-4", up=False)
    engine.store.update_host("compute-kvm-5", hypervisor_version=7000000)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    [conductor] = [e for e in events(engine, rid) if e.event == "conductor_live_migrate_instance"]
    assert scheduler.public_reason(conductor.details) == "No valid host was found. There are not enough hosts available."
    assert "compute-kvm-2: ComputeFilter: service disabled (maintenance)" in conductor.details
    assert ("compute-kvm-3: CPUModelFilter: Nehalem cannot run a guest using the source's Haswell"
            in conductor.details)
    assert "compute-kvm-4: ComputeFilter: service is down" in conductor.details
    assert ("compute-kvm-5: HypervisorVersionFilter: version 7000000 is older than the source's 8002000"
            in conductor.details)
    assert status_of(engine, migration) == "error"
    assert engine.store.get_instance(inst.id).host == SOURCE
    assert_claims_follow_servers(engine.store)


def test_filters__older_hypervisor_and_other_type_are_rejected(engine: Engine) -> None:
    source = engine.store.get_host(SOURCE)
    older = source.model_copy(update={"name": "old", "hypervisor_version": 7000000})
    xen = source.model_copy(update={"name": "x", "hypervisor_type": "xen"})
    newer_cpu = source.model_copy(update={"name": "n", "cpu_model": "Skylake-Server"})
    empty = engine.store.get_usage("nowhere")
    filters = migration_checks.destination_filters(source, {"tried": "it failed"})
    reasons = {h.name: [r for f in filters if (r := f(h, empty))] for h in (older, xen, newer_cpu, source)}
    assert reasons == {"old": ["HypervisorVersionFilter: version 7000000 is older than the source's 8002000"],
                       "x": ["HypervisorTypeFilter: xen, the source is QEMU"], "n": [],
                       SOURCE: ["the server's current host"]}
    assert migration_checks.cpu_can_host("Skylake-Server", "Haswell") and not migration_checks.cpu_can_host("Haswell", "Skylake-Server")
    assert not migration_checks.cpu_can_host("EPYC", "Haswell") and migration_checks.cpu_can_host("mystery", "mystery")


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
    assert_claims_follow_servers(engine.store)


def test_forced_host__skips_the_scheduler_so_a_disabled_host_is_taken(engine: Engine) -> None:
    engine.fleet.set_host_state("compute-kvm-2", enabled=False, disabled_reason="drain")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst, host="compute-kvm-2", force=True)
    engine.drain()
    assert (status_of(engine, migration), engine.store.get_instance(inst.id).host) == ("completed", "compute-kvm-2")
    [conductor] = [e for e in events(engine, rid) if e.event == "conductor_live_migrate_instance"]
    assert conductor.details == "Chose compute-kvm-2. No other host was considered"
    assert_claims_follow_servers(engine.store)


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
    assert_claims_follow_servers(engine.store)


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
    assert_claims_follow_servers(engine.store)


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
    squatter = ("compute-kvm-3", "squatter", engine.store.get_flavor("3"))
    assert_claims_follow_servers(engine.store, extra_claims=[squatter])

    inst = engine.store.get_instance(inst.id)
    rid, migration = migrate(engine, inst, host="compute-kvm-3", force=True, disk_over_commit=True)
    engine.drain()
    assert status_of(engine, migration) == "completed"  # 30 * 2.0 - 40 = 20 GB over-committed room
