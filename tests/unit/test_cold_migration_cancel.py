"""Cancelling a cold migration on the in-memory engine (real flows, fakeredis): before and after its copy.

The fleet: a flavor-2 server boots on compute-kvm-3 (most free RAM); see tests/unit/cold_migration_helpers.py.
"""
from __future__ import annotations

import pytest

from compute import errors
from compute.actions import cold_migration_cancel
from compute.models import Instance
from compute.states import MigrationStatus, VmState
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.engine import Engine
from tests.unit.cold_migration_helpers import (
    SOURCE,
    claims,
    events,
    migrate,
    migration,
    server,
    set_fields,
    usage,
)


# ---- cancel --------------------------------------------------------------------------------------
def test_cancel__before_scheduling_rolls_back_and_is_its_own_action(engine: Engine) -> None:
    inst = engine.boot()
    migrate_ctx, m = migrate(engine, inst)
    cancel_ctx = admin_ctx()
    cold_migration_cancel.cancel_migration(engine.service, cancel_ctx, server(engine, inst), m.id)
    assert migration(engine, m).status == MigrationStatus.CANCELLING
    engine.drain()

    assert migration(engine, m).status == MigrationStatus.CANCELLED
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, SOURCE)
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["cold_migration_cancel", "migrate", "create"]
    cancel = engine.store.get_action(cancel_ctx.request_id)
    assert cancel.message is None and cancel.finish_time
    assert events(engine, cancel_ctx.request_id) == [
        ("conductor_cold_migration_cancel", "Success", "compute-actions")]
    [scheduling] = engine.store.list_events(migrate_ctx.request_id)
    assert scheduling.result == "Error" and "cancelled by an administrator" in scheduling.details
    assert engine.fleet.operation_count("cold_migration") == 0


def test_cancel__while_the_destination_is_claimed_releases_it(engine: Engine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The cancel lands inside prep_resize, after the claim on the destination: the copy never starts."""
    inst = engine.boot()
    _, m = migrate(engine, inst)
    original = engine.fleet.prep_resize
    seen_claims: list[set[str]] = []

    def prep_then_cancel(dest: str, instance: Instance) -> None:
        seen_claims.append(claims(engine, inst))
        monkeypatch.setattr(engine.fleet, "prep_resize", original)
        cold_migration_cancel.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
        original(dest, instance)

    monkeypatch.setattr(engine.fleet, "prep_resize", prep_then_cancel)
    engine.drain()
    assert seen_claims == [{SOURCE, "compute-kvm-1"}]
    assert migration(engine, m).status == MigrationStatus.CANCELLED
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert server(engine, inst).task_state is None
    assert engine.fleet.operation_count("cold_migration") == 0


def test_cancel__after_the_copy_began_is_409_and_changes_nothing(engine: Engine) -> None:
    engine.fleet.set_durations({"cold_migration_per_gb": 10.0})
    inst = engine.boot()
    _, m = migrate(engine, inst)
    while migration(engine, m).status == MigrationStatus.PRE_MIGRATING:
        engine.runner.run(*engine.queue.pop())
    assert migration(engine, m).status == MigrationStatus.MIGRATING
    with pytest.raises(errors.InstanceInvalidState) as caught:
        cold_migration_cancel.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
    assert caught.value.message == (f"Cannot 'cancel_migration' instance {inst.id} while it is in "
                                    "task_state resize_migrating")
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["migrate", "create"]


def test_cancel__twice_is_400_the_second_time(engine: Engine) -> None:
    inst = engine.boot()
    _, m = migrate(engine, inst)
    cold_migration_cancel.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
    with pytest.raises(errors.Invalid) as caught:
        cold_migration_cancel.cancel_migration(engine.service, admin_ctx(), server(engine, inst), m.id)
    assert caught.value.message == (f"Migration {m.id} state of instance {inst.id} is cancelling. "
                                    "Cannot cancel_migration while the migration is in this state.")
    engine.drain()
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["cold_migration_cancel", "migrate", "create"]


def test_cancel__unknown_or_foreign_migration_is_404_and_idle_server_409(engine: Engine) -> None:
    inst = engine.boot()
    other = engine.boot(name="other")
    _, m = migrate(engine, inst)
    for bad in (m.id + 100, "x", "-1"):
        with pytest.raises(errors.NotFound, match=f"Migration {bad} not found for instance {inst.id}"):
            cold_migration_cancel.cancel_migration(engine.service, admin_ctx(), server(engine, inst), bad)
    with pytest.raises(errors.InstanceInvalidState, match="is in an invalid state for 'cancel_migration'"):
        cold_migration_cancel.cancel_migration(engine.service, admin_ctx(), other, m.id)


def test_cancel__locked_server_is_409_for_a_member(engine: Engine) -> None:
    inst = engine.boot()
    _, m = migrate(engine, inst)
    set_fields(engine, inst, locked=True)
    with pytest.raises(errors.InstanceIsLocked):
        cold_migration_cancel.cancel_migration(engine.service, demo_ctx(), server(engine, inst), m.id)
    assert migration(engine, m).status == MigrationStatus.PRE_MIGRATING
