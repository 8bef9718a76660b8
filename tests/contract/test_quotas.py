"""Quota usage counters and limits, and Idempotency-Key records: the store's side, on fakeredis and real Redis.

The counters move only in the MULTI that writes a server record, so they always equal a
count of the records that are not deleted; a create checked against them cannot pass a
limit however many run at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from compute import errors, quotas
from compute.models import IdempotencyRecord, Instance, QuotaSnapshot
from compute.settings import QuotaOptions
from compute.store import Store
from tests.contract.conftest import SMALL, Backend, action_for, server
from tests.support.concurrency import at_once, raised

OPTIONS = QuotaOptions()


def counted(store: Store, project: str = "demo", user: str | None = None) -> dict[str, int]:
    """What the records say the project (user) holds."""
    found = {"instances": 0, "cores": 0, "ram": 0}
    for inst in store.list_instances():
        if inst.deleted or inst.project_id != project or (user is not None and inst.user_id != user):
            continue
        found["instances"] += 1
        found["cores"] += inst.flavor.vcpus
        found["ram"] += inst.flavor.ram
    return found


def usage(store: Store, project: str = "demo", user: str | None = None) -> dict[str, int]:
    snap = store.quota_snapshot(project, user)
    held = snap.user_usage if user is not None else snap.project_usage
    return {r: held.get(r, 0) for r in ("instances", "cores", "ram")}


def create(store: Store, check: Callable[[QuotaSnapshot], None] | None = None, **fields: object) -> Instance:
    inst = server().model_copy(update=fields)
    action, run = action_for(inst)
    store.create_instance(inst, action, run, due_in=30, check_quota=check)
    return inst


def mark_deleted(inst: Instance) -> None:
    inst.deleted = True
    inst.vm_state = "deleted"


def test_create__adds_the_flavor_to_the_project_and_user_counters(store: Store) -> None:
    create(store)
    create(store, check=quotas.instance_create_check(OPTIONS, SMALL))
    create(store, user_id="other")
    assert usage(store) == counted(store) == {"instances": 3, "cores": 6, "ram": 6144}
    assert usage(store, user="demo") == counted(store, user="demo") == {"instances": 2, "cores": 4, "ram": 4096}


def test_create__over_quota_raises_novas_message_and_writes_nothing(store: Store) -> None:
    store.update_quotas("demo", None, {"instances": 1}, lambda snap: None)
    check = quotas.instance_create_check(OPTIONS, SMALL)
    create(store, check=check)
    refused = server()
    action, run = action_for(refused)
    with pytest.raises(errors.OverQuota) as caught:
        store.create_instance(refused, action, run, due_in=30, check_quota=check)
    assert caught.value.message == "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
    assert store.get_instance(refused.id) is None
    assert store.get_action(action.request_id) is None and store.get_run(run.request_id) is None
    assert usage(store)["instances"] == 1


def test_create__a_concurrent_create_makes_the_check_run_again_on_the_new_usage(store: Store) -> None:
    store.update_quotas("demo", None, {"instances": 1}, lambda snap: None)
    real = quotas.instance_create_check(OPTIONS, SMALL)
    seen: list[int] = []

    def check(snap: QuotaSnapshot) -> None:
        seen.append(snap.project_usage.get("instances", 0))
        if len(seen) == 1:
            create(store)  # lands between this create's read and its EXEC
        real(snap)

    with pytest.raises(errors.OverQuota):
        create(store, check=check)
    assert seen == [0, 1]
    assert usage(store)["instances"] == counted(store)["instances"] == 1


def test_delete__gives_back_once_when_deleted_flips(store: Store) -> None:
    inst = create(store)
    store.update_instance(inst.id, lambda i: setattr(i, "vm_state", "error"))
    assert usage(store)["instances"] == 1  # ERROR still counts, as in Nova
    store.update_instance(inst.id, mark_deleted)
    store.update_instance(inst.id, mark_deleted)
    store.update_instance(inst.id, lambda i: setattr(i, "task_state", None))
    assert usage(store) == usage(store, user="demo") == {"instances": 0, "cores": 0, "ram": 0}


def test_purge__gives_back_what_the_record_held(store: Store) -> None:
    inst = create(store)
    gone = create(store)
    store.update_instance(gone.id, mark_deleted)
    store.purge_instance_record(inst.id)
    store.purge_instance_record(gone.id)
    store.purge_instance_record(gone.id)
    assert usage(store) == {"instances": 0, "cores": 0, "ram": 0}


def test_put_instance__counts_and_a_rewrite_does_not_count_twice(store: Store) -> None:
    inst = server()
    store.put_instance(inst)
    store.put_instance(inst)
    assert usage(store) == counted(store) == {"instances": 1, "cores": 2, "ram": 2048}
    store.put_instance(inst.model_copy(update={"deleted": True}))
    assert usage(store)["instances"] == 0


@pytest.mark.parametrize("threads", [40])
def test_create__concurrent_creates_never_pass_the_limit(backend: Backend, threads: int) -> None:
    store = backend.store()
    store.update_quotas("demo", None, {"instances": 7}, lambda snap: None)
    check = quotas.instance_create_check(OPTIONS, SMALL)
    outcomes = at_once(threads, lambda _: create(backend.store(), check=check))
    refusals = raised(outcomes)
    assert all(isinstance(e, errors.OverQuota) for e in refusals)
    assert threads - len(refusals) == 7
    assert usage(store) == counted(store) == {"instances": 7, "cores": 14, "ram": 14336}


def test_update_quotas__validate_sees_usage_and_user_sums(store: Store) -> None:
    create(store)
    store.update_quotas("demo", "bob", {"instances": 3}, lambda snap: None)
    snaps: list[QuotaSnapshot] = []
    store.update_quotas("demo", None, {"cores": 9}, snaps.append)
    assert snaps[0].project_usage["instances"] == 1
    assert snaps[0].user_limit_sums == {"instances": 3}
    check = quotas.validate_update(OPTIONS, [("instances", 2)], user=False, force=False)
    with pytest.raises(errors.Invalid):
        store.update_quotas("demo", None, {"instances": 2}, check)
    assert store.quota_snapshot("demo").project_limits == {"cores": 9}


def test_delete_quotas__the_project_takes_its_users_with_it(store: Store) -> None:
    store.update_quotas("demo", None, {"instances": 5}, lambda snap: None)
    store.update_quotas("demo", "bob", {"instances": 2}, lambda snap: None)
    store.update_quotas("demo", "carol", {"cores": 2}, lambda snap: None)
    store.delete_quotas("demo", "bob")
    assert store.quota_snapshot("demo", "bob").user_limits == {}
    assert store.quota_snapshot("demo", "carol").user_limits == {"cores": 2}
    store.delete_quotas("demo")
    snap = store.quota_snapshot("demo", "carol", user_sums=True)
    assert (snap.project_limits, snap.user_limits, snap.user_limit_sums) == ({}, {}, {})


def test_class_quotas(store: Store) -> None:
    assert store.update_class_quotas("default", {"instances": 4}) == {"instances": 4}
    assert quotas.project_limits(OPTIONS, store.quota_snapshot("demo"))["instances"] == 4


# ---- idempotency records -------------------------------------------------------------------------
def test_idempotency__reserve_once_finish_and_release_only_with_the_token(backend: Backend) -> None:
    store = backend.store()
    mine = IdempotencyRecord(fingerprint="f", request_id="req-1")
    assert store.reserve_idempotency_key("d", mine, 30) is None
    found = store.reserve_idempotency_key("d", IdempotencyRecord(fingerprint="f", request_id="req-2"), 30)
    assert found == mine
    stranger = mine.model_copy(update={"token": "not-mine", "state": "done"})
    assert store.finish_idempotency_key("d", stranger, 60) is False
    assert store.release_idempotency_key("d", "not-mine") is False
    done = mine.model_copy(update={"state": "done", "status": 202, "body": "{}"})
    assert store.finish_idempotency_key("d", done, 60) is True
    assert store.get_idempotency_record("d") == done
    assert 0 < store.idempotency_key_ttl("d") <= 60
    assert store.release_idempotency_key("d", mine.token) is True
    assert store.get_idempotency_record("d") is None


def test_idempotency__a_reservation_expires(backend: Backend) -> None:
    store = backend.store()
    assert store.reserve_idempotency_key("e", IdempotencyRecord(fingerprint="f", request_id="r"), 0.05) is None
    assert 0 < store.idempotency_key_ttl("e") <= 0.05
    time.sleep(0.1)
    assert store.get_idempotency_record("e") is None and store.idempotency_key_ttl("e") is None
