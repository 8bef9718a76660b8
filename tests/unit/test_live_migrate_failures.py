"""Live migration on the in-memory engine when things go wrong: a failed step, a copy that will not
finish, the server deleted mid-copy, a worker dying inside the flow.

The fleet and the helpers: tests/unit/live_migration_helpers.py.
"""
from __future__ import annotations

import time

import pytest

from compute import scheduler
from compute.actions.delete_server import delete_server
from tasks import live_migrate as flow
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import admin_ctx
from tests.support.crash import (
    SimulatedCrash,
    crash_every_time,
    crash_once_after,
    crash_once_before,
)
from tests.support.engine import Engine, deliver_until
from tests.unit.live_migration_helpers import (
    SOURCE,
    boot_on_source,
    events,
    migrate,
    slow_copy,
    status_of,
)


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
    assert_claims_follow_servers(engine.store)


def test_copy_failure__ends_failed_and_gives_the_destination_claim_back(engine: Engine) -> None:
    engine.fleet.add_fault("live_migration", message="libvirt: job failed")
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "failed"
    assert engine.store.get_instance(inst.id).host == SOURCE
    assert engine.store.get_run(rid).error == "libvirt: job failed"
    assert_claims_follow_servers(engine.store)


def test_delete_while_migrating__the_migration_stops_and_nothing_stays_claimed(engine: Engine) -> None:
    slow_copy(engine)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    delete_server(engine.service, admin_ctx(), engine.store.get_instance(inst.id))
    engine.drain()
    gone = engine.store.get_instance(inst.id)
    assert gone.deleted and gone.task_state is None
    assert status_of(engine, migration) == "failed"
    assert engine.store.get_run(rid).error == f"Instance {inst.id} is being deleted"
    assert engine.store.hosts_claimed_by(inst.id) == set()
    assert_claims_follow_servers(engine.store)


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
    assert_claims_follow_servers(engine.store)


def test_completion_timeout__force_complete_finishes_the_migration(engine: Engine) -> None:
    engine.settings.libvirt.live_migration_completion_timeout = 1
    engine.settings.libvirt.live_migration_timeout_action = "force_complete"
    engine.fleet.add_fault("live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    engine.drain()
    assert status_of(engine, migration) == "completed"
    assert engine.store.get_instance(inst.id).host == "compute-kvm-3"
    assert engine.fleet.operation(f"{migration.request_id}:live_migration")["force_complete"] is True


# ---- a worker dying inside the flow ------------------------------------------------------------------
def test_crash__between_the_claim_and_its_commit_leaves_no_stray_claim(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = boot_on_source(engine)
    crash_once_after(monkeypatch, scheduler, "claim_first_fit")
    rid, migration = migrate(engine, inst)
    with pytest.raises(SimulatedCrash):
        engine.drain()
    assert engine.store.hosts_claimed_by(inst.id) == {SOURCE, "compute-kvm-3"}  # claimed, never recorded
    engine.fleet.set_host_state("compute-kvm-3", enabled=False)  # the resumed search must go elsewhere
    assert engine.reaper.sweep(now=time.time() + 3600) == [rid]
    engine.drain()
    assert status_of(engine, migration) == "completed"
    assert engine.store.get_instance(inst.id).host == "compute-kvm-2"
    assert_claims_follow_servers(engine.store)


def test_crash__inside_the_destination_check_resumes_with_the_recorded_claim(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_once_before(monkeypatch, engine.fleet, "check_can_live_migrate_destination")
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
    assert_claims_follow_servers(engine.store)


def test_crash__a_copy_that_keeps_killing_its_worker_is_abandoned_and_rolled_back(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    crash_every_time(monkeypatch, flow.TransferGuest, "execute")
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
    assert_claims_follow_servers(engine.store)
