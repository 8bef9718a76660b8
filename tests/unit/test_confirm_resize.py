"""confirmResize on the in-memory engine (real flows, fakeredis): the source claim goes, the server is active.

The fleet: a flavor-2 server boots on compute-kvm-3 (most free RAM); see tests/unit/cold_migration_helpers.py.
"""
from __future__ import annotations

import pytest

from compute import errors
from compute.actions import confirm_resize
from compute.states import MigrationStatus, VmState
from tests.support.contexts import demo_ctx
from tests.support.engine import Engine
from tests.unit.cold_migration_helpers import (
    SOURCE,
    claims,
    events,
    migration,
    resized,
    server,
    set_fields,
    statuses_written,
    usage,
)


# ---- confirmResize -------------------------------------------------------------------------------
def test_confirm__releases_the_source_claim_and_finishes_active(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst, m = resized(engine)
    written = statuses_written(monkeypatch)
    ctx = demo_ctx()
    confirm_resize.confirm_resize(engine.service, ctx, server(engine, inst))
    during = server(engine, inst)
    assert (during.vm_state, during.task_state) == (VmState.RESIZED, None)  # still VERIFY_RESIZE
    engine.drain()

    assert written == ["confirming", "confirmed"]
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ACTIVE, None, "compute-kvm-1")
    assert claims(engine, inst) == {"compute-kvm-1"} and usage(engine) == {"compute-kvm-1": 1}
    assert events(engine, ctx.request_id) == [("compute_confirm_resize", "Success", SOURCE)]
    assert [op["host"] for op in engine.fleet.operations("confirm_migration")] == [SOURCE]
    action = engine.store.get_action(ctx.request_id)
    assert (action.action, action.user_id, action.message) == ("confirmResize", "demo", None)


def test_confirm__not_resized_is_409_and_no_finished_migration_is_400(engine: Engine) -> None:
    inst = engine.boot()
    with pytest.raises(errors.InstanceInvalidState) as caught:
        confirm_resize.confirm_resize(engine.service, demo_ctx(), inst)
    assert caught.value.message == f"Cannot 'confirmResize' instance {inst.id} while it is in vm_state active"
    set_fields(engine, inst, vm_state=VmState.RESIZED)
    with pytest.raises(errors.Invalid, match="^Instance has not been resized.$"):
        confirm_resize.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    assert [a.action for a in engine.store.list_actions(inst.id)] == ["create"]


def test_confirm__source_compute_down_is_409_and_the_migration_stays_finished(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.set_host_state(SOURCE, up=False)
    with pytest.raises(errors.Conflict, match="Service is unavailable"):
        confirm_resize.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    assert migration(engine, m).status == MigrationStatus.FINISHED


def test_confirm__driver_failure_leaves_it_resized_and_confirmable(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.add_fault("confirm_migration", times=1, message="source disk busy")
    ctx = demo_ctx()
    confirm_resize.confirm_resize(engine.service, ctx, server(engine, inst))
    engine.drain()
    assert migration(engine, m).status == MigrationStatus.FINISHED
    assert server(engine, inst).vm_state == VmState.RESIZED
    assert claims(engine, inst) == {SOURCE, "compute-kvm-1"}
    assert events(engine, ctx.request_id) == [("compute_confirm_resize", "Error", SOURCE)]
    confirm_resize.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    assert migration(engine, m).status == MigrationStatus.CONFIRMED
    assert claims(engine, inst) == {"compute-kvm-1"}


def test_confirm__twice_records_one_confirm(engine: Engine) -> None:
    inst, _ = resized(engine)
    confirm_resize.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    with pytest.raises(errors.Invalid, match="Instance has not been resized."):
        confirm_resize.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    assert [a.action for a in engine.store.list_actions(inst.id)].count("confirmResize") == 1
    assert engine.fleet.operation_count("confirm_migration") == 1
