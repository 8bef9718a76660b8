"""Crash recovery on the real stack: real Redis, real Celery broker, real prefork workers.

What these prove, each against processes that really die:
- a worker SIGKILLed (main process and pool child together, like a host death) while
  *inside* a step, after it claimed resources, or while its driver operation runs
  between polls: another worker finishes the action, and every effect happens once;
- only the pool child SIGKILLed (the OOM-killer pattern): the same worker recovers it;
- a worker stuck in a step past its lease: another takes over, the stuck one writes nothing;
- a message delivered twice, to two workers, runs the flow once;
- an accepted action whose message was lost is found by the reaper inside a worker.
(A broker that refuses the publish: test_broker_down.py.)

On Redis the killed worker's delivery stays parked in the broker's ``unacked`` hash
(visibility timeout 3600 s, see ../shared/design/celery-redis-notes.md Part 2a, K2), so
recovery comes from the engine's lease and reaper, not from Celery redelivering it. The
crash, redelivery, duplicate and lost-message tests also run on RabbitMQ (``BOTH_BROKERS``),
which requeues a dead consumer's delivery at once: there the action is resumed by that
redelivery or by the reaper, whichever comes first, and still runs once.
"""
from __future__ import annotations

import os
import signal

import pytest

from compute.actions.change_password import change_password
from compute.actions.create_server import create_server
from compute.models import Flavor, FlowRun, Instance
from compute.states import VmState
from compute.store import Store
from tests.integration.conftest import (
    BOTH_BROKERS,
    Namespace,
    StartWorker,
    WorkerProcess,
)
from tests.support.contexts import IMAGE_ID, demo_ctx
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

# Long enough that the kill always lands inside it; the killed process never finishes it.
STALL_SECONDS = 15.0
CREATE_EVENTS = ["compute__do_build_and_run_instance"]
DRIVING = {"waiting", "done", "error", "lease-lost"}  # outcomes of a delivery that ran the flow


# ---- observations ------------------------------------------------------------------------------
def describe(store: Store, request_id: str) -> str:
    run = store.get_run(request_id)
    events = [(e.key, e.result) for e in store.list_events(request_id)]
    return (f"run={run.model_dump() if run else None}\nevents={events}\n"
            f"lease={store.lease_holder(request_id)}")


def run_of(store: Store, request_id: str) -> FlowRun:
    run = store.get_run(request_id)
    assert run is not None, f"no flow run for {request_id}"
    return run


def wait_finished(store: Store, request_id: str) -> FlowRun:
    return wait_for(lambda: (r := store.get_run(request_id)) is not None and r.finished and r,
                    message=lambda: f"{request_id} to finish\n{describe(store, request_id)}")


def wait_inside_stalled_step(runtime: Runtime, request_id: str, cursor: int, event: str, rule_id: str) -> None:
    """Until the worker is inside the step at ``cursor``: its event is open and the stall has begun.

    The stall rule's budget drops to 0 in the driver's start call just before it blocks,
    so a budget of 0 means the pool child is asleep inside ``step.execute``.
    """
    store = runtime.store

    def inside() -> bool:
        run = store.get_run(request_id)
        open_event = store.get_event(request_id, f"{cursor:03d}:{event}")
        return (run is not None and run.status == "running" and run.cursor == cursor
                and open_event is not None and open_event.finish_time is None
                and runtime.fleet.fault_budget(rule_id) == 0)

    wait_for(inside, message=lambda: f"{request_id} inside step {cursor}\n{describe(store, request_id)}")


def usage_by_host(store: Store) -> dict[str, tuple[int, int, int, int]]:
    out = {}
    for host in store.list_hosts():
        u = store.get_usage(host.name)
        out[host.name] = (u.vcpus_used, u.memory_mb_used, u.local_gb_used, u.running_vms)
    return out


def assert_one_claim(store: Store, inst: Instance) -> None:
    """Exactly one claim, on the server's host, and host usage equal to one flavor there."""
    flavor: Flavor = inst.flavor
    assert inst.host
    assert store.hosts_claimed_by(inst.id) == {inst.host}
    for host in store.list_hosts():
        assert store.claims_on_host(host.name) == ({inst.id} if host.name == inst.host else set()), host.name
    expected = {h.name: (0, 0, 0, 0) for h in store.list_hosts()}
    expected[inst.host] = (flavor.vcpus, flavor.ram, flavor.total_disk_gb, 1)
    assert usage_by_host(store) == expected


def assert_events_once_success(store: Store, request_id: str, names: list[str]) -> None:
    events = store.list_events(request_id)
    assert [e.event for e in events] == names, [(e.key, e.result) for e in events]
    for e in events:
        assert e.result == "Success" and e.finish_time is not None, e
    action = store.get_action(request_id)
    assert action is not None and action.finish_time is not None and action.message is None, action


def assert_created_once(runtime: Runtime, inst_id: str, request_id: str) -> Instance:
    store = runtime.store
    run = run_of(store, request_id)
    assert (run.status, run.phase, run.error, run.abort_reason) == ("done", "forward", None, None)
    inst = store.get_instance(inst_id)
    assert inst is not None
    assert (inst.vm_state, inst.task_state, inst.fault) == (VmState.ACTIVE, None, None)
    assert_one_claim(store, inst)
    assert runtime.fleet.operation_count("spawn") == 1
    assert_events_once_success(store, request_id, CREATE_EVENTS)
    return inst


def assert_each_wake_driven_once(run: FlowRun, interrupted: int | set[int]) -> None:
    """Every delivery that ran the flow either waited (one new wake each) or ended it, except
    the ``interrupted`` ones that died or lost the lease; a reap supersedes one wake number
    without a delivery. So a duplicate that ran the flow a second time shows up here."""
    allowed = {interrupted} if isinstance(interrupted, int) else interrupted
    assert run.deliveries - (run.wake - run.reaps + 1) in allowed, run


def delivery_outcomes(workers: list[WorkerProcess], request_id: str) -> list[tuple[str, int, str]]:
    return [(w.name, wake, outcome) for w in workers for wake, outcome in w.outcomes(request_id)]


def assert_no_wake_driven_twice(workers: list[WorkerProcess], request_id: str) -> None:
    driven = [wake for _, wake, outcome in delivery_outcomes(workers, request_id) if outcome in DRIVING]
    assert len(driven) == len(set(driven)), delivery_outcomes(workers, request_id)


def assert_recovered_after_kill(namespace: Namespace, run: FlowRun, request_id: str,
                                workers: list[WorkerProcess]) -> None:
    """The killed delivery's action was resumed by the reaper (Redis parks the delivery), or on
    RabbitMQ, which requeues it at once, by that redelivery if it came before the reaper."""
    logs = "".join(w.log() for w in workers)
    if f"reaped {request_id}" in logs:
        assert run.reaps >= 1, run
        return
    assert namespace.broker_kind == "rabbitmq", f"{request_id} was not reaped\n{logs}"
    redelivered = [(w.name, o) for w in workers[1:] for wake, o in w.outcomes(request_id) if wake == 0]
    assert any(o in DRIVING for _, o in redelivered), delivery_outcomes(workers, request_id)


def boot(runtime: Runtime, flavor_id: str = "2") -> tuple[Instance, str]:
    ctx = demo_ctx()
    inst = create_server(runtime.service, ctx, name="vm", flavor_id=flavor_id, image_id=IMAGE_ID)
    return inst, ctx.request_id


# ---- kill -9 in the middle of a flow ---------------------------------------------------------------
@BOTH_BROKERS
def test_kill_inside_spawn_after_claim__another_worker_builds_it_once(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    rule = runtime.fleet.add_fault("spawn", mode="stall", times=1, seconds=STALL_SECONDS)
    first = start_worker("first")
    inst, rid = boot(runtime)

    wait_inside_stalled_step(runtime, rid, cursor=2, event="compute__do_build_and_run_instance", rule_id=rule)
    placed = runtime.store.get_instance(inst.id)
    assert placed is not None and placed.host and placed.task_state == "spawning"
    assert runtime.store.hosts_claimed_by(inst.id) == {placed.host}  # the kill lands after the claim
    killed_owner = run_of(runtime.store, rid).owner
    first.kill()
    assert runtime.fleet.operation_count("spawn") == 0  # killed inside the driver's start call
    namespace.wait_killed_delivery_kept()

    second = start_worker("second")
    run = wait_finished(runtime.store, rid)

    built = assert_created_once(runtime, inst.id, rid)
    assert built.host == placed.host  # resumed with the claim it had, not rescheduled
    assert run.owner != killed_owner
    assert_each_wake_driven_once(run, interrupted=1)
    assert_recovered_after_kill(namespace, run, rid, [first, second])
    assert_no_wake_driven_twice([first, second], rid)


def test_kill_inside_change_password__another_worker_finishes_it_once(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    first = start_worker("first")
    inst, create_rid = boot(runtime, flavor_id="1")
    wait_finished(runtime.store, create_rid)
    rule = runtime.fleet.add_fault("set_admin_password", mode="stall", times=1, seconds=STALL_SECONDS)

    ctx = demo_ctx()
    change_password(runtime.service, ctx, runtime.store.get_instance(inst.id), "s3cret")  # type: ignore[arg-type]
    rid = ctx.request_id
    wait_inside_stalled_step(runtime, rid, cursor=1, event="compute_set_admin_password", rule_id=rule)
    first.kill()
    assert runtime.fleet.operation_count("set_admin_password") == 0

    second = start_worker("second")
    run = wait_finished(runtime.store, rid)

    assert (run.status, run.phase, run.error) == ("done", "forward", None), run
    after = runtime.store.get_instance(inst.id)
    assert after is not None
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    assert after.password_set_at is not None
    assert runtime.fleet.operation_count("set_admin_password") == 1
    assert_events_once_success(runtime.store, rid, ["compute_set_admin_password"])
    assert [a.action for a in runtime.store.list_actions(inst.id)] == ["changePassword", "create"]
    assert_one_claim(runtime.store, after)  # the password change touched no claim
    assert_each_wake_driven_once(run, interrupted=1)
    assert_no_wake_driven_twice([first, second], rid)


def test_kill_between_polls__the_running_spawn_is_resumed_not_restarted(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    # 40 s of simulated spawn at duration_scale 0.1: 4 s of wall time, polled every 0.3 s.
    runtime.fleet.set_durations({"spawn": 40.0})
    first = start_worker("first")
    inst, rid = boot(runtime)

    def waiting_on_spawn() -> bool:
        run = runtime.store.get_run(rid)
        return (run is not None and run.status == "waiting" and run.cursor == 2
                and runtime.fleet.operation_count("spawn") == 1)

    wait_for(waiting_on_spawn, message=lambda: f"{rid} waiting on its spawn\n{describe(runtime.store, rid)}")
    first.kill()  # its next poll, a countdown message it had reserved, dies with it
    op_id = f"{rid}:spawn"
    started = runtime.fleet.operation(op_id)["started_at"]

    second = start_worker("second")
    run = wait_finished(runtime.store, rid)

    assert_created_once(runtime, inst.id, rid)
    assert runtime.fleet.operation(op_id)["started_at"] == started  # the same operation
    assert run.reaps >= 1
    # Usually the kill finds the run waiting; rarely it lands inside a poll's delivery.
    assert_each_wake_driven_once(run, interrupted={0, 1})
    assert f"reaped {rid}" in second.log()
    assert_no_wake_driven_twice([first, second], rid)


@BOTH_BROKERS
def test_kill_pool_child_only__its_own_worker_recovers_the_action(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    """The OOM-killer pattern: only the pool child dies. Celery requeues the message
    (reject_on_worker_lost) to the worker's new child, which finds the dead child's lease
    still held and drops it; the reaper of the same, still living, worker rescues the action."""
    rule = runtime.fleet.add_fault("spawn", mode="stall", times=1, seconds=STALL_SECONDS)
    worker = start_worker("only")
    inst, rid = boot(runtime)
    wait_inside_stalled_step(runtime, rid, cursor=2, event="compute__do_build_and_run_instance", rule_id=rule)
    owner = run_of(runtime.store, rid).owner
    assert owner is not None
    child = int(owner.split(":")[1])  # worker_identity(): host:pid:nonce, the pid of the pool child
    assert child != worker.proc.pid and os.getpgid(child) == worker.pgid
    os.kill(child, signal.SIGKILL)

    run = wait_finished(runtime.store, rid)

    assert worker.alive()
    assert_created_once(runtime, inst.id, rid)
    assert run.reaps >= 1 and run.owner != owner
    assert_each_wake_driven_once(run, interrupted=1)
    assert_no_wake_driven_twice([worker], rid)


# ---- one message, two workers ----------------------------------------------------------------------
@pytest.mark.engine(lease_ttl_seconds=10.0)
@pytest.mark.parametrize("duplicate", ["while_leased", "racing", "after_wait"])
@BOTH_BROKERS
def test_duplicate_message_to_two_workers__runs_the_flow_once(
        duplicate: str, namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    """The same message (task id "<request id>:0") published twice, with two workers consuming.

    ``while_leased``: the copy goes out while the first delivery is inside the spawn step,
    so only the other worker can take it, and it must find the action leased.
    ``racing``: both copies go out at once; either worker may take either.
    ``after_wait``: the copy goes out once the first delivery has committed a wait (a late
    redelivery); its wake number is stale and it must drop itself.
    """
    if duplicate == "while_leased":
        rule = runtime.fleet.add_fault("spawn", mode="stall", times=1, seconds=5.0)
    if duplicate == "after_wait":
        runtime.fleet.set_durations({"spawn": 20.0})  # 2 s of wall time at scale 0.1
    workers = [start_worker("a"), start_worker("b")]
    inst, rid = boot(runtime)
    if duplicate == "while_leased":
        wait_inside_stalled_step(runtime, rid, cursor=2, event="compute__do_build_and_run_instance", rule_id=rule)
    if duplicate == "after_wait":
        wait_for(lambda: run_of(runtime.store, rid).wake >= 1,
                 message=lambda: f"{rid} to wait on its spawn\n{describe(runtime.store, rid)}")
    runtime.enqueuer.enqueue(rid, 0, action="create", server_id=inst.id)
    run = wait_finished(runtime.store, rid)

    assert_created_once(runtime, inst.id, rid)
    assert run.reaps == 0
    assert_each_wake_driven_once(run, interrupted=0)
    # Both copies of wake 0 were delivered and logged; exactly one of them ran the flow.
    wait_for(lambda: len([o for o in delivery_outcomes(workers, rid) if o[1] == 0]) == 2,
             message=lambda: f"two deliveries of wake 0: {delivery_outcomes(workers, rid)}")
    wake0 = [(name, outcome) for name, wake, outcome in delivery_outcomes(workers, rid) if wake == 0]
    assert sorted(o in DRIVING for _, o in wake0) == [False, True], wake0
    dropped = {o for _, o in wake0 if o not in DRIVING}
    assert dropped <= {"leased", "stale", "finished"}, wake0
    if duplicate == "while_leased":  # the busy worker could not take the copy: each got one
        assert {name for name, _ in wake0} == {w.name for w in workers}, wake0
    if duplicate == "after_wait":
        assert dropped <= {"stale", "finished"}, wake0
    assert_no_wake_driven_twice(workers, rid)


# ---- a worker that outlives its lease --------------------------------------------------------------
def test_worker_stuck_past_its_lease__another_takes_over_and_the_stuck_one_writes_nothing(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    """Not dead, only slow: the stall (8 s) outlasts the lease (3 s). The reaper hands the
    action to the other worker, which finishes it; when the stuck delivery wakes up its
    commit finds the lease gone and it stops without writing.

    Both workers are ready before the action is accepted, so the other one is idle when the
    lease runs out however slowly workers boot (one booted after the stall began could still be
    booting when the stuck one is free again, and the stuck one would take the rescue itself)."""
    rule = runtime.fleet.add_fault("spawn", mode="stall", times=1, seconds=8.0)
    workers = [start_worker("a"), start_worker("b")]
    inst, rid = boot(runtime)
    wait_inside_stalled_step(runtime, rid, cursor=2, event="compute__do_build_and_run_instance", rule_id=rule)
    owner = run_of(runtime.store, rid).owner
    assert owner is not None
    stalled_group = os.getpgid(int(owner.split(":")[1]))  # worker_identity(): host:pid:nonce of the pool child
    stuck, other = sorted(workers, key=lambda w: w.pgid != stalled_group)
    assert stuck.pgid == stalled_group
    run = wait_finished(runtime.store, rid)
    wait_for(lambda: stuck.outcomes(rid), message="the stuck delivery to end")
    assert stuck.outcomes(rid) == [(0, "lease-lost")], delivery_outcomes([stuck, other], rid)
    assert any(outcome in DRIVING for _, outcome in other.outcomes(rid)), delivery_outcomes([stuck, other], rid)

    final = run_of(runtime.store, rid)
    assert final.model_dump() == run.model_dump()  # the stuck worker's late commit changed nothing
    assert_created_once(runtime, inst.id, rid)
    assert run.reaps >= 1
    assert_each_wake_driven_once(run, interrupted=1)
    assert_no_wake_driven_twice([stuck, other], rid)


# ---- a lost message, found by the reaper ----------------------------------------------------------
@BOTH_BROKERS
def test_lost_message__the_reaper_in_a_worker_requeues_it(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    inst, rid = boot(runtime)  # accepted while no worker runs
    assert namespace.queue_length() == 1
    namespace.lose_queued_messages()
    assert namespace.queue_length() == 0
    assert run_of(runtime.store, rid).status == "queued"

    worker = start_worker("only")
    run = wait_finished(runtime.store, rid)

    assert_created_once(runtime, inst.id, rid)
    assert f"reaped {rid}" in worker.log()
    # Requeued as it was (a run that never started keeps wake 0); delivered once.
    assert [o for o in worker.outcomes(rid) if o[0] == 0] == [(0, "waiting")]
    assert run.reaps == 0
    assert_each_wake_driven_once(run, interrupted=0)
