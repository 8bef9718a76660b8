"""Every action records Nova 34's event names, on the hosts Nova records them on.

The table is nova-operator-surface.md §18 and nova-contract.md §7 (``wrap_instance_event``
prefixes: compute events on the compute host that ran them, conductor and ``api_`` events on
the service host). Tools that read events (Tempest, operators' scripts) look for these names.
A server boots on compute-kvm-1 of the sample fleet; its moves go where the scheduler sends them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from compute.actions import (
    change_password,
    confirm_resize,
    create_backup,
    delete_server,
    lock,
    migrate,
    pause,
    reset_state,
    resume,
    revert_resize,
    start,
    stop,
    suspend,
    unlock,
    unpause,
)
from compute.actions import live_migrate as live_migrate_action
from compute.models import Instance
from tests.support.contexts import admin_ctx
from tests.support.engine import Engine

SOURCE = "compute-kvm-1"
# Where an event is recorded: the host the server booted on, its host when the action is asked
# for, its host when the action has ended, or this service's own host (Nova's conductor and API).
ORIGIN, BEFORE, AFTER, SERVICE = "origin", "before", "after", "service"

# In the order they begin: Nova's compute_live_migration event ends as soon as the source has
# spawned _do_live_migration, which then calls pre_live_migration on the destination.
LIVE_MIGRATION = [
    ("conductor_live_migrate_instance", SERVICE),
    ("compute_check_can_live_migrate_destination", AFTER),
    ("compute_check_can_live_migrate_source", BEFORE),
    ("compute_live_migration", BEFORE),
    ("compute_pre_live_migration", AFTER),
    ("compute_post_live_migration_at_destination", AFTER),
]
COLD_MIGRATION = [
    ("conductor_migrate_server", SERVICE),
    ("cold_migrate", SERVICE),
    ("compute_prep_resize", AFTER),
    ("compute_resize_instance", BEFORE),
    ("compute_finish_resize", AFTER),
]


def live_migrate(engine: Engine, inst: Instance) -> str:
    ctx = admin_ctx()
    request = live_migrate_action.LiveMigrationRequest(host=None, block_migration=None, force=False,
                                                       checks_before_reply=False)
    live_migrate_action.live_migrate(engine.service, ctx, inst, request)
    return ctx.request_id


def cold_migrate(engine: Engine, inst: Instance) -> str:
    ctx = admin_ctx()
    migrate.migrate(engine.service, ctx, inst)
    return ctx.request_id


def resized(engine: Engine, inst: Instance) -> Instance:
    cold_migrate(engine, inst)
    engine.drain()
    moved = engine.store.get_instance(inst.id)
    assert moved is not None and moved.vm_state == "resized"
    return moved


def call(action: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[Engine, Instance], str]:
    def run(engine: Engine, inst: Instance) -> str:
        ctx = admin_ctx()
        action(engine.service, ctx, inst, *args, **kwargs)
        return ctx.request_id

    return run


def after(*actions: Callable[..., Any]) -> Callable[[Engine, Instance], Instance]:
    """The server once these earlier actions have run to their end."""
    def prepare(engine: Engine, inst: Instance) -> Instance:
        for action in actions:
            action(engine.service, admin_ctx(), engine.store.get_instance(inst.id))
            engine.drain()
        found = engine.store.get_instance(inst.id)
        assert found is not None
        return found

    return prepare


def active(_engine: Engine, inst: Instance) -> Instance:
    return inst


Prepare = Callable[[Engine, Instance], Instance]
Run = Callable[[Engine, Instance], str]
# action name -> (the server it starts from, how to ask for it, its events with where each is recorded)
EXPECTED: dict[str, tuple[Prepare, Run, list[tuple[str, str]]]] = {
    "delete": (active, call(delete_server.delete_server), [("compute_terminate_instance", BEFORE)]),
    "stop": (active, call(stop.stop), [("compute_stop_instance", BEFORE)]),
    "start": (after(stop.stop), call(start.start), [("compute_start_instance", BEFORE)]),
    "pause": (active, call(pause.pause), [("compute_pause_instance", BEFORE)]),
    "unpause": (after(pause.pause), call(unpause.unpause), [("compute_unpause_instance", BEFORE)]),
    "suspend": (active, call(suspend.suspend), [("compute_suspend_instance", BEFORE)]),
    "resume": (after(suspend.suspend), call(resume.resume), [("compute_resume_instance", BEFORE)]),
    "lock": (active, call(lock.lock), [("api_lock", SERVICE)]),
    "unlock": (after(lock.lock), call(unlock.unlock), [("api_unlock", SERVICE)]),
    "live-migration": (active, live_migrate, LIVE_MIGRATION),
    "migrate": (active, cold_migrate, COLD_MIGRATION),
    # A resized server is on its destination; Nova confirms on the source (drop_move_claim_at_source)
    # and reverts on the destination, then finishes the revert on the source.
    "confirmResize": (resized, call(confirm_resize.confirm_resize), [("compute_confirm_resize", ORIGIN)]),
    "revertResize": (resized, call(revert_resize.revert_resize),
                     [("compute_revert_resize", BEFORE), ("compute_finish_revert_resize", ORIGIN)]),
    "createBackup": (active, call(create_backup.create_backup, name="b", backup_type="daily", rotation=1),
                     [("compute_backup_instance", BEFORE)]),
    "changePassword": (active, call(change_password.change_password, "s3cret"),
                       [("compute_set_admin_password", BEFORE)]),
    "resetState": (active, call(reset_state.reset_state, "error"), []),
}


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_each_action_records_novas_events_on_novas_hosts(engine: Engine, action: str) -> None:
    prepare, run, expected = EXPECTED[action]
    booted = engine.boot(availability_zone=f"nova:{SOURCE}", ctx=admin_ctx())
    assert booted.host == SOURCE
    before = prepare(engine, booted)
    request_id = run(engine, before)
    engine.drain()

    recorded = engine.store.get_action(request_id)
    assert recorded is not None and recorded.action == action
    ended = engine.store.get_instance(booted.id)
    hosts = {ORIGIN: SOURCE, BEFORE: before.host, SERVICE: engine.settings.host,
             AFTER: ended.host if ended is not None and not ended.deleted else None}
    events = engine.store.list_events(request_id)
    assert [e.event for e in events] == [name for name, _ in expected]
    assert all(e.result == "Success" for e in events), [(e.event, e.result, e.details) for e in events]
    assert [e.host for e in events] == [hosts[where] for _, where in expected]
    if any(where == AFTER for _, where in expected):
        assert hosts[AFTER] != hosts[BEFORE]  # it moved


def test_create_records_one_build_event_on_the_compute_host(engine: Engine) -> None:
    ctx = admin_ctx()
    inst = engine.boot(ctx=ctx)
    [create] = engine.store.list_actions(inst.id)
    assert create.action == "create"
    assert [(e.event, e.host, e.result) for e in engine.store.list_events(create.request_id)] == [
        ("compute__do_build_and_run_instance", inst.host, "Success")]


def test_a_live_migration_rolled_back_records_the_rollback_at_the_destination(engine: Engine) -> None:
    inst = engine.boot(availability_zone=f"nova:{SOURCE}", ctx=admin_ctx())
    engine.fleet.add_fault("live_migration", mode="fail", times=1)
    request_id = live_migrate(engine, inst)
    engine.drain()
    events = engine.store.list_events(request_id)
    names = [e.event for e in events]
    assert names[-1] == "compute_rollback_live_migration_at_destination", names
    assert "compute_post_live_migration_at_destination" not in names
    rollback, transfer = events[-1], next(e for e in events if e.event == "compute_live_migration")
    # The transfer fails after Nova's compute_live_migration event has ended (see LIVE_MIGRATION).
    assert transfer.host == SOURCE and rollback.host not in (None, SOURCE)
    assert rollback.result == "Success" and "Simulated failure" in (rollback.details or "")
    assert engine.store.get_instance(inst.id).host == SOURCE


def test_deleting_a_server_that_never_got_a_host_records_no_compute_event(engine: Engine) -> None:
    engine.fleet.add_fault("spawn", mode="fail", times=1)
    failed = engine.boot(ctx=admin_ctx())
    server = engine.store.get_instance(failed.id)
    assert server is not None and server.vm_state == "error" and server.host is None
    ctx = admin_ctx()
    delete_server.delete_server(engine.service, ctx, server)
    engine.drain()
    assert engine.store.get_instance(failed.id).deleted
    assert engine.store.get_action(ctx.request_id).action == "delete"
    assert engine.store.list_events(ctx.request_id) == []
