"""Aborting a live migration on the in-memory engine (real flows, fakeredis), and what the controls need.

The fleet and the helpers: tests/unit/live_migration_helpers.py.
"""
from __future__ import annotations

import pytest

from compute import errors, migrations
from compute.actions import live_migration_abort, live_migration_force_complete
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.engine import Engine, deliver_until
from tests.unit.live_migration_helpers import (
    SOURCE,
    boot_on_source,
    events,
    migrate,
    slow_copy,
    status_of,
)


# ---- abort ---------------------------------------------------------------------------------------
def test_abort__mid_copy_cancels_the_job_and_rolls_back(engine: Engine) -> None:
    slow_copy(engine)
    inst = boot_on_source(engine)
    rid, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    ctx = admin_ctx()
    live_migration_abort.abort(engine.service, ctx, engine.store.get_instance(inst.id), str(migration.id))
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
    assert_claims_follow_servers(engine.store)


def test_abort__while_preparing_needs_2_65(engine: Engine) -> None:
    engine.fleet.add_fault("pre_live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "preparing")
    current = engine.store.get_instance(inst.id)
    with pytest.raises(migrations.InvalidMigrationState, match="is preparing. Cannot abort live migration"):
        live_migration_abort.abort(engine.service, admin_ctx(), current, str(migration.id))
    live_migration_abort.abort(engine.service, admin_ctx(), current, str(migration.id), abortable=live_migration_abort.ABORTABLE_FROM_2_65)
    engine.drain()
    assert status_of(engine, migration) == "cancelled"
    assert engine.store.get_instance(inst.id).host == SOURCE
    assert_claims_follow_servers(engine.store)


def test_abort__after_completion_reports_that_it_came_too_late(engine: Engine) -> None:
    slow_copy(engine)
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    ctx = admin_ctx()
    live_migration_abort.abort(engine.service, ctx, engine.store.get_instance(inst.id), str(migration.id))
    engine.store.update_migration(migration.id, lambda m: setattr(m, "status", "completed"))  # it won the race
    [(_, _, abort_rid, wake)] = [m for m in engine.queue.pending if m[2] == ctx.request_id]
    assert engine.runner.run(abort_rid, wake) == "error"  # the abort's delivery comes first
    [event] = events(engine, ctx.request_id)
    assert (event.result, event.details) == (
        "Error", f"Migration {migration.id} state of instance {inst.id} is completed. "
                 "Cannot abort live migration while the migration is in this state.")


def test_controls__need_the_server_migrating_and_unlocked_for_non_admins(engine: Engine) -> None:
    inst = boot_on_source(engine)
    with pytest.raises(errors.InstanceInvalidState, match="Instance .* is in an invalid state for 'force_complete'"):
        live_migration_force_complete.force_complete(engine.service, admin_ctx(), inst, "1")
    with pytest.raises(errors.InstanceInvalidState, match="Instance .* is in an invalid state for 'abort live migration'"):
        live_migration_abort.abort(engine.service, admin_ctx(), inst, "1")
    _, migration = migrate(engine, inst)
    engine.store.update_instance(inst.id, lambda i: setattr(i, "locked", True))
    with pytest.raises(errors.InstanceIsLocked):
        live_migration_abort.abort(engine.service, demo_ctx(), engine.store.get_instance(inst.id), str(migration.id))
    with pytest.raises(migrations.MigrationNotFoundForInstance):
        live_migration_abort.abort(engine.service, admin_ctx(), engine.store.get_instance(inst.id), "424242")
