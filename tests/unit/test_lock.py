"""lock and unlock in the service layer: done in full before the answer, with their action and event.

The owner is whoever is of the server's project (Nova's ``is_owner``); anyone else locking
(an admin) is ``admin``. What a lock then refuses is in tests/api/test_power_state_rules.py.
"""
from __future__ import annotations

import pytest

from compute import errors
from compute.actions import lock, pause, unlock, unpause
from compute.context import RequestContext
from compute.models import Instance
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.engine import Engine


def server(engine: Engine, inst: Instance) -> Instance:
    found = engine.store.get_instance(inst.id)
    assert found is not None
    return found


def lock_state(engine: Engine, inst: Instance) -> tuple[bool, str | None, str | None]:
    now = server(engine, inst)
    return now.locked, now.locked_by, now.locked_reason


def test_lock__by_the_owner_is_recorded_with_its_api_event_and_nothing_is_queued(engine: Engine) -> None:
    inst = engine.boot()
    ctx = demo_ctx()
    lock.lock(engine.service, ctx, inst, reason="maintenance")
    assert lock_state(engine, inst) == (True, "owner", "maintenance")
    action = engine.store.get_action(ctx.request_id)
    assert (action.action, action.user_id, action.project_id) == ("lock", "demo", "demo")
    assert action.finish_time == action.start_time
    [event] = engine.store.list_events(ctx.request_id)
    assert (event.event, event.result, event.host) == ("api_lock", "Success", engine.settings.host)
    assert event.finish_time is not None
    assert engine.store.get_run(ctx.request_id) is None
    assert engine.queue.pending == []


def test_lock__again_by_the_owner_changes_and_records_nothing(engine: Engine) -> None:
    inst = engine.boot()
    lock.lock(engine.service, demo_ctx(), inst, reason="first")
    again = demo_ctx()
    lock.lock(engine.service, again, server(engine, inst), reason="second")
    assert lock_state(engine, inst) == (True, "owner", "first")
    assert engine.store.get_action(again.request_id) is None
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["lock", "create"]


def test_lock__by_an_admin_takes_over_the_owners_lock_and_keeps_its_reason(engine: Engine) -> None:
    inst = engine.boot()
    lock.lock(engine.service, demo_ctx(), inst, reason="mine")
    ctx = admin_ctx()
    lock.lock(engine.service, ctx, server(engine, inst))
    assert lock_state(engine, inst) == (True, "admin", "mine")
    lock.lock(engine.service, admin_ctx(), server(engine, inst), reason="audit")
    assert lock_state(engine, inst) == (True, "admin", "audit")
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["lock", "lock", "lock", "create"]


def test_lock__an_admin_of_the_servers_own_project_is_its_owner(engine: Engine) -> None:
    inst = engine.boot(ctx=admin_ctx())
    lock.lock(engine.service, admin_ctx(), inst)
    assert lock_state(engine, inst) == (True, "owner", None)


@pytest.mark.parametrize(("holder", "caller", "expected"), [
    (None, demo_ctx(), True), (None, admin_ctx(), True),
    ("owner", demo_ctx(), True), ("owner", admin_ctx(), False),
    ("admin", demo_ctx(), False), ("admin", admin_ctx(), True),
])
def test_unlock__expected_locked_by_is_novas_rule(engine: Engine, holder: str | None, caller: RequestContext,
                                                  expected: bool) -> None:
    inst = engine.boot()
    if holder is not None:
        lock.lock(engine.service, demo_ctx() if holder == "owner" else admin_ctx(), inst)
    assert unlock.is_expected_locked_by(caller, server(engine, inst)) is expected


def test_unlock__clears_the_lock_its_holder_and_reason_with_its_api_event(engine: Engine) -> None:
    inst = engine.boot()
    lock.lock(engine.service, admin_ctx(), inst, reason="audit")
    ctx = admin_ctx()
    unlock.unlock(engine.service, ctx, server(engine, inst))
    assert lock_state(engine, inst) == (False, None, None)
    [event] = engine.store.list_events(ctx.request_id)
    assert (event.event, event.result, event.host) == ("api_unlock", "Success", engine.settings.host)
    assert engine.store.get_action(ctx.request_id).action == "unlock"


def test_unlock__of_a_server_that_is_not_locked_is_recorded_too(engine: Engine) -> None:
    inst = engine.boot()
    ctx = demo_ctx()
    unlock.unlock(engine.service, ctx, inst)
    assert engine.store.get_action(ctx.request_id).action == "unlock"


def test_lock__stops_members_not_admins_and_unlock_lets_members_again(engine: Engine) -> None:
    inst = engine.boot()
    lock.lock(engine.service, demo_ctx(), inst)
    with pytest.raises(errors.InstanceIsLocked, match=f"Instance {inst.id} is locked"):
        pause.pause(engine.service, demo_ctx(), server(engine, inst))
    assert server(engine, inst).task_state is None
    unlock.unlock(engine.service, demo_ctx(), server(engine, inst))
    pause.pause(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    assert server(engine, inst).vm_state == "paused"
    lock.lock(engine.service, demo_ctx(), server(engine, inst))
    unpause.unpause(engine.service, admin_ctx(), server(engine, inst))
    engine.drain()
    assert server(engine, inst).vm_state == "active"


def test_lock__a_locked_server_can_be_locked_during_any_action(engine: Engine) -> None:
    """No state check: a lock lands while a pause runs, and the pause still finishes."""
    inst = engine.boot()
    engine.fleet.set_durations({"pause": 30.0})
    pause.pause(engine.service, demo_ctx(), inst)
    engine.deliver_one()
    lock.lock(engine.service, admin_ctx(), server(engine, inst), reason="freeze")
    engine.drain()
    now = server(engine, inst)
    assert (now.vm_state, now.locked, now.locked_by) == ("paused", True, "admin")
