"""Actions, events and flow runs: commits under the lease, LeaseLost, the reaper's claim."""
from __future__ import annotations

import time

import pytest

from compute import errors
from compute.models import ActionEvent, FlowRun, Instance, InstanceAction, utcnow
from compute.store import Store
from tests.contract.conftest import action_for, server


def started(store: Store, due_in: float = 30) -> tuple[Instance, InstanceAction, FlowRun]:
    inst = server()
    action, run = action_for(inst)
    store.create_instance(inst, action, run, due_in=due_in)
    return inst, action, run


def test_actions__newest_first_and_record_action(store: Store) -> None:
    inst, first, _ = started(store)
    second, _ = action_for(inst, "reboot")
    store.record_action(second)
    assert [a.request_id for a in store.list_actions(inst.id)] == [second.request_id, first.request_id]
    assert store.get_action(second.request_id).seq > store.get_action(first.request_id).seq


def test_commit__events_action_and_run_under_the_lease(store: Store) -> None:
    _, _, run = started(store)
    rid = run.request_id
    assert store.acquire_lease(rid, "worker-1", ttl=30)
    assert not store.acquire_lease(rid, "worker-2", ttl=30)
    first = ActionEvent(key="000:compute_spawn", event="compute_spawn")
    run.cursor, run.status = 1, "running"
    store.commit_run(run, owner="worker-1", lease_ttl=30, due_in=60, events=[first])
    finished = first.model_copy(update={"finish_time": utcnow(), "result": "Success"})
    run.status = "done"
    store.commit_run(run, owner="worker-1", lease_ttl=30, due_in=None, events=[finished],
                     action_update={"finish_time": finished.finish_time})

    assert store.list_events(rid) == [finished]
    assert store.get_event(rid, first.key) == finished
    assert store.get_event(rid, "nope") is None
    assert store.get_action(rid).finish_time == finished.finish_time
    stored = store.get_run(rid)
    assert (stored.cursor, stored.status, stored.heartbeat_at is not None) == (1, "done", True)
    assert store.active_run_count() == 0
    assert store.lease_holder(rid) == "worker-1"


def test_commit__lease_lost_when_the_lease_is_someone_elses(store: Store) -> None:
    _, _, run = started(store)
    rid = run.request_id
    assert store.acquire_lease(rid, "worker-2", ttl=30)
    before = store.get_run(rid)
    run.cursor = 3
    with pytest.raises(errors.LeaseLost):
        store.commit_run(run, owner="worker-1", lease_ttl=30, due_in=None,
                         events=[ActionEvent(key="000:x", event="x")], action_update={"message": "no"})
    assert store.get_run(rid) == before
    assert store.list_events(rid) == []
    assert store.get_action(rid).message is None
    assert store.active_run_count() == 1


def test_commit__lease_lost_when_nobody_holds_it(store: Store) -> None:
    _, _, run = started(store)
    with pytest.raises(errors.LeaseLost):
        store.commit_run(run, owner="worker-1", lease_ttl=30, due_in=5)


def test_begin_delivery__takes_the_lease_and_reads_the_run_and_action(store: Store) -> None:
    _, _, run = started(store)
    rid = run.request_id
    taken, found_run, found_action = store.begin_delivery(rid, "worker-1", ttl=30)
    assert (taken, found_run, found_action) == (True, store.get_run(rid), store.get_action(rid))
    assert store.lease_holder(rid) == "worker-1"
    taken, found_run, _ = store.begin_delivery(rid, "worker-2", ttl=30)
    assert (taken, found_run is not None, store.lease_holder(rid)) == (False, True, "worker-1")
    assert store.begin_delivery("req-none", "worker-1", ttl=30)[1:] == (None, None)


def test_commit__on_the_deliverys_action_updates_it_in_place(store: Store) -> None:
    _, _, run = started(store)
    rid = run.request_id
    taken, _, action = store.begin_delivery(rid, "worker-1", ttl=30)
    assert taken and action is not None
    store.commit_run(run, owner="worker-1", lease_ttl=30, due_in=60, action_update={"message": "Error"},
                     action=action)
    assert store.get_action(rid) == action and action.message == "Error"


def test_commit__an_action_deleted_meanwhile_stays_deleted(store: Store) -> None:
    _, action, run = started(store)
    rid = run.request_id
    _, _, held = store.begin_delivery(rid, "worker-1", ttl=30)
    store.delete_action(action)
    store.commit_run(run, owner="worker-1", lease_ttl=30, due_in=None, action=held)
    assert store.get_action(rid) is None


def test_release_lease__only_by_its_holder(store: Store) -> None:
    assert store.acquire_lease("req-1", "worker-1", ttl=30)
    store.release_lease("req-1", "worker-2")
    assert store.lease_holder("req-1") == "worker-1"
    store.release_lease("req-1", "worker-1")
    assert store.lease_holder("req-1") is None


def test_delete_action__removes_action_events_and_run(store: Store) -> None:
    inst, action, run = started(store)
    assert store.acquire_lease(run.request_id, "w", ttl=30)
    store.commit_run(run, owner="w", lease_ttl=30, due_in=5, events=[ActionEvent(key="000:x", event="x")])
    store.delete_action(action)
    assert store.get_action(action.request_id) is None
    assert store.list_events(action.request_id) == []
    assert store.get_run(run.request_id) is None
    assert store.list_actions(inst.id) == []
    assert store.active_run_count() == 0


def test_due_runs__only_those_past_their_time(store: Store) -> None:
    _, _, late = started(store, due_in=-10)
    started(store, due_in=600)
    assert store.due_runs(time.time()) == [late.request_id]


def test_claim_stale_run__once_and_never_a_leased_or_finished_run(store: Store) -> None:
    _, _, stale = started(store, due_in=-10)
    _, _, leased = started(store, due_in=-10)
    _, _, ended = started(store, due_in=-10)
    assert store.acquire_lease(leased.request_id, "worker-1", ttl=30)
    ended.status = "done"
    store.commit_run(ended, owner=None, lease_ttl=0, due_in=-10)
    now = time.time()

    def reap(run: FlowRun) -> None:
        run.reaps += 1
        run.wake += 1

    claimed = store.claim_stale_run(stale.request_id, now, grace=60, decide=reap)
    assert (claimed.reaps, claimed.wake) == (1, 1)
    assert store.get_run(stale.request_id).reaps == 1
    assert store.claim_stale_run(stale.request_id, now, grace=60, decide=reap) is None  # moved ahead by grace
    assert stale.request_id not in store.due_runs(now + 30)
    assert store.claim_stale_run(leased.request_id, now, grace=60, decide=reap) is None
    assert store.get_run(leased.request_id).reaps == 0
    assert store.claim_stale_run(ended.request_id, now, grace=60, decide=reap) is None
    assert store.active_run_count() == 2  # the finished run left the reaper's index
    assert store.claim_stale_run("req-unknown", now, grace=60, decide=reap) is None
