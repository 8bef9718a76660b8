"""Live migrations whose worker is SIGKILLed (main process and pool child, like a host dying).

Each test kills the worker at one point of the migration, starts another, and checks that the
migration ends consistently (completed, or rolled back) with every host's claimed capacity
equal to what its servers use:
- before the claim: the worker had taken the migration's message and died before running it;
- after the claim: inside the destination check, with the destination claimed and recorded;
- mid-migration: while the copy runs between polls, once to completion and once to a rollback.
The last test shows that a migration in progress holds no worker slot: with two single-slot
workers, many more migrations than two are copying at the same time.

The killed delivery stays parked in the broker's ``unacked`` hash, so recovery comes from the
engine's lease and reaper, not from Celery redelivering it.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Namespace
from tests.integration.live_migration_fixtures import (
    SOURCE,
    boot_on,
    describe,
    freeze_pool,
    live_migrate,
    wait_migration_ended,
)
from tests.support.claims import assert_claims_follow_servers
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

STALL_SECONDS = 15.0  # the killed process never comes back from it
DEST_CHECK = "compute_check_can_live_migrate_destination"


def assert_completed_once(runtime: Runtime, inst_id: str, request_id: str, dest: str | None = None) -> None:
    store = runtime.store
    inst = store.get_instance(inst_id)
    assert inst is not None and (inst.vm_state, inst.task_state) == ("active", None)
    assert inst.host != SOURCE and (dest is None or inst.host == dest), inst.host
    run = store.get_run(request_id)
    assert run is not None and (run.status, run.error) == ("done", None), describe(store, request_id)
    assert runtime.fleet.operation_count("live_migration") == 1
    events = store.list_events(request_id)
    assert all(e.result == "Success" and e.finish_time for e in events), describe(store, request_id)
    assert [e.event for e in events][-1] == "compute_post_live_migration_at_destination"
    assert_claims_follow_servers(store)


def test_kill_before_the_claim__the_reaper_starts_it_on_another_worker(
        namespace: Namespace, runtime: Runtime, start_worker: Any) -> None:
    first = start_worker("first")
    inst = boot_on(runtime)
    freeze_pool(first)
    rid, migration = live_migrate(runtime, inst)
    wait_for(namespace.unacked_for_queue, message="the migration's message to be taken by the frozen worker")
    assert runtime.store.get_run(rid).status == "queued"  # taken, never started
    assert runtime.store.hosts_claimed_by(inst.id) == {SOURCE}
    first.kill()

    second = start_worker("second")
    record = wait_migration_ended(runtime.store, migration, rid)

    assert record.status == "completed"
    assert_completed_once(runtime, inst.id, rid)
    assert f"reaped {rid}" in second.log()


def test_kill_after_the_claim__inside_the_destination_check_resumes_with_that_claim(
        namespace: Namespace, runtime: Runtime, start_worker: Any) -> None:
    first = start_worker("first")
    inst = boot_on(runtime)
    rule = runtime.fleet.add_fault("check_can_live_migrate_destination", mode="stall", times=1,
                                   seconds=STALL_SECONDS)
    rid, migration = live_migrate(runtime, inst)
    store = runtime.store

    def inside_the_check() -> str | None:
        [*_, last] = store.list_events(rid) or [None]
        stalled = runtime.fleet.fault_budget(rule) == 0
        if last is not None and last.event == DEST_CHECK and last.finish_time is None and stalled:
            return last.host
        return None

    dest = wait_for(inside_the_check, message=lambda: f"{rid} inside the destination check\n{describe(store, rid)}")
    assert store.hosts_claimed_by(inst.id) == {SOURCE, dest}
    first.kill()
    assert store.hosts_claimed_by(inst.id) == {SOURCE, dest}  # the dead worker's claim is still there

    second = start_worker("second")
    record = wait_migration_ended(store, migration, rid)

    assert record.status == "completed"
    assert_completed_once(runtime, inst.id, rid, dest=dest)
    checks = [(e.host, e.result) for e in store.list_events(rid) if e.event == DEST_CHECK]
    assert checks == [(dest, "Success")]  # the interrupted check was repeated in place, not a new attempt
    assert f"reaped {rid}" in second.log()


@pytest.mark.parametrize("copy_outcome", ["completes", "fails"])
def test_kill_mid_migration__the_running_copy_is_resumed_not_restarted(
        copy_outcome: str, namespace: Namespace, runtime: Runtime, start_worker: Any) -> None:
    first = start_worker("first")
    inst = boot_on(runtime)
    # 3 s per GiB of simulated copy at duration_scale 0.1: 22 GiB (block migration) -> 6.6 s of wall time.
    runtime.fleet.set_durations({"live_migration_per_gb": 3.0})
    if copy_outcome == "fails":
        runtime.fleet.add_fault("live_migration", message="libvirt: migration job failed")
    rid, migration = live_migrate(runtime, inst)
    store = runtime.store

    def copying() -> bool:
        record = store.get_migration(migration.id)
        return record is not None and record.status == "running" and (record.memory_processed_bytes or 0) > 0

    wait_for(copying, message=lambda: f"{rid} copying\n{describe(store, rid)}")
    dest = store.get_migration(migration.id).dest_compute
    op_id = f"{rid}:live_migration"
    started = runtime.fleet.operation(op_id)["started_at"]
    first.kill()

    second = start_worker("second")
    record = wait_migration_ended(store, migration, rid)

    assert runtime.fleet.operation(op_id)["started_at"] == started  # the same copy job, polled on
    if copy_outcome == "completes":
        assert record.status == "completed"
        assert_completed_once(runtime, inst.id, rid, dest=dest)
    else:
        assert record.status == "failed"
        after = store.get_instance(inst.id)
        assert (after.host, after.vm_state, after.task_state) == (SOURCE, "active", None)
        rollback = [e for e in store.list_events(rid) if e.event == "compute_rollback_live_migration_at_destination"]
        assert [(e.host, e.details) for e in rollback] == [(dest, "libvirt: migration job failed")]
        assert_claims_follow_servers(store)
    assert f"reaped {rid}" in second.log()


@pytest.mark.engine(poll_interval_seconds=0.5)
def test_migrations_in_progress_hold_no_worker_slot(namespace: Namespace, runtime: Runtime,
                                                    start_worker: Any) -> None:
    """Two workers with one slot each; 24 migrations copy at once, and all of them complete."""
    workers = [start_worker("a"), start_worker("b")]
    # 24 servers: more than the default quota of 10 instances (and 20 cores) of the admin project.
    runtime.store.update_quotas("admin", None, {"instances": -1, "cores": -1, "ram": -1}, lambda snap: None)
    servers = [boot_on(runtime, host, flavor_id="1", name=f"vm{i}")
               for i, host in enumerate([SOURCE, "compute-kvm-2"] * 12)]
    runtime.fleet.set_durations({"live_migration_per_gb": 30.0})  # ~6 s of copy each at duration_scale 0.1
    started = [live_migrate(runtime, inst) for inst in servers]
    store = runtime.store

    def copying_at_once() -> int:
        return sum(1 for m in store.list_migrations() if m.status == "running")

    most = wait_for(lambda: (n := copying_at_once()) >= len(servers) // 2 and n,
                    message=lambda: f"many copies at once; now {copying_at_once()}")
    assert most > len(workers), most
    for rid, migration in started:
        assert wait_migration_ended(store, migration, rid).status == "completed", describe(store, rid)
    assert runtime.fleet.operation_count("live_migration") == len(servers)
    assert_claims_follow_servers(store)
