"""Force-completing a live migration on the in-memory engine (real flows, fakeredis).

The fleet and the helpers: tests/unit/live_migration_helpers.py.
"""
from __future__ import annotations

import pytest

from compute import errors
from compute.actions import live_migration_force_complete
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import admin_ctx
from tests.support.engine import Engine, deliver_until
from tests.unit.live_migration_helpers import boot_on_source, events, migrate, status_of


# ---- force-complete ------------------------------------------------------------------------------
def test_force_complete__converges_a_copy_that_would_not_finish(engine: Engine) -> None:
    engine.fleet.add_fault("live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "running")
    ctx = admin_ctx()
    live_migration_force_complete.force_complete(engine.service, ctx, engine.store.get_instance(inst.id), str(migration.id))
    engine.drain()
    assert status_of(engine, migration) == "completed"
    assert engine.store.get_instance(inst.id).host == "compute-kvm-3"
    [event] = events(engine, ctx.request_id)
    assert (event.event, event.result) == ("compute_live_migration_force_complete", "Success")
    assert engine.store.get_action(ctx.request_id).action == "live_migration_force_complete"
    assert_claims_follow_servers(engine.store)


def test_force_complete__only_while_running(engine: Engine) -> None:
    engine.fleet.add_fault("pre_live_migration", mode="hang")
    inst = boot_on_source(engine)
    _, migration = migrate(engine, inst)
    deliver_until(engine, lambda: status_of(engine, migration) == "preparing")
    current = engine.store.get_instance(inst.id)
    with pytest.raises(errors.Invalid, match="is preparing. Cannot force complete"):
        live_migration_force_complete.force_complete(engine.service, admin_ctx(), current, str(migration.id))
    with pytest.raises(errors.Invalid, match=f"Migration 999 not found for instance {inst.id}"):
        live_migration_force_complete.force_complete(engine.service, admin_ctx(), current, "999")
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["live-migration", "create"]
