"""revertResize on the in-memory engine (real flows, fakeredis), and confirm and revert racing each other.

The fleet: a flavor-2 server boots on compute-kvm-3 (most free RAM); see tests/unit/cold_migration_helpers.py.
"""
from __future__ import annotations

from typing import Any

import pytest

from compute import errors, migrations
from compute.actions import confirm_resize, revert_resize
from compute.actions.delete_server import delete_server
from compute.models import Migration
from compute.states import MigrationStatus, PowerState, VmState, server_status
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.engine import Engine
from tests.unit.cold_migration_helpers import (
    FINISH_THE_MOVE,
    SOURCE,
    claims,
    events,
    migrate,
    migration,
    resized,
    server,
    set_fields,
    statuses_written,
    usage,
)


# ---- revertResize --------------------------------------------------------------------------------
def test_revert__shows_revert_resize_then_returns_to_the_source(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    inst, m = resized(engine)
    written = statuses_written(monkeypatch)
    ctx = demo_ctx()
    revert_resize.revert_resize(engine.service, ctx, server(engine, inst))
    during = server(engine, inst)
    assert server_status(during.vm_state, during.task_state) == "REVERT_RESIZE"
    engine.drain()

    assert written == ["reverting", "reverted"]
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.power_state) == (VmState.ACTIVE, None, PowerState.RUNNING)
    assert (after.host, after.node) == (SOURCE, SOURCE)
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}
    assert events(engine, ctx.request_id) == [("compute_revert_resize", "Success", "compute-kvm-1"),
                                              ("compute_finish_revert_resize", "Success", SOURCE)]
    assert [op["host"] for op in engine.fleet.operations("destroy")] == ["compute-kvm-1"]
    assert [op["host"] for op in engine.fleet.operations("finish_revert_migration")] == [SOURCE]


def test_revert__of_a_stopped_server_ends_stopped(engine: Engine) -> None:
    inst = engine.boot()
    set_fields(engine, inst, vm_state=VmState.STOPPED, power_state=PowerState.SHUTDOWN)
    migrate(engine, inst)
    engine.drain()
    revert_resize.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.power_state, after.host) == (VmState.STOPPED, PowerState.SHUTDOWN, SOURCE)


def test_revert__destination_failure_goes_back_to_verify_resize(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.add_fault("destroy", host="compute-kvm-1", times=1, message="hypervisor unreachable")
    revert_resize.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.RESIZED, None, "compute-kvm-1")
    assert migration(engine, m).status == MigrationStatus.FINISHED
    assert claims(engine, inst) == {SOURCE, "compute-kvm-1"}


def test_revert__source_failure_after_the_copy_is_gone_is_error_on_the_source(engine: Engine) -> None:
    inst, m = resized(engine)
    engine.fleet.add_fault("finish_revert_migration", message="cannot power on")
    revert_resize.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    after = server(engine, inst)
    assert (after.vm_state, after.task_state, after.host) == (VmState.ERROR, None, SOURCE)
    assert after.fault["message"] == "cannot power on"
    assert migration(engine, m).status == MigrationStatus.ERROR
    assert claims(engine, inst) == {SOURCE} and usage(engine) == {SOURCE: 1}


def test_confirm_and_revert__whoever_comes_second_is_refused(engine: Engine) -> None:
    inst, _ = resized(engine)
    revert_resize.revert_resize(engine.service, demo_ctx(), server(engine, inst))
    with pytest.raises(errors.InstanceInvalidState, match="task_state resize_reverting"):
        confirm_resize.confirm_resize(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()

    other, _ = resized(engine, name="other")
    confirm_resize.confirm_resize(engine.service, demo_ctx(), server(engine, other))
    with pytest.raises(errors.Invalid, match="Instance has not been resized."):
        revert_resize.revert_resize(engine.service, demo_ctx(), server(engine, other))


@pytest.mark.parametrize("first, second", [("confirm_resize", "revert_resize"), ("revert_resize", "confirm_resize"),
                                           ("confirm_resize", "confirm_resize")])
def test_confirm_and_revert__one_overtaken_between_its_read_and_its_write_is_refused(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, first: str, second: str) -> None:
    inst, m = resized(engine)
    original = migrations.finished_migration

    def overtaken(store: Any, instance_id: str) -> Migration | None:
        found = original(store, instance_id)
        monkeypatch.setattr(migrations, "finished_migration", original)
        FINISH_THE_MOVE[first](engine.service, demo_ctx(), server(engine, inst))
        return found

    monkeypatch.setattr(migrations, "finished_migration", overtaken)
    with pytest.raises((errors.Invalid, errors.InstanceInvalidState)):
        FINISH_THE_MOVE[second](engine.service, admin_ctx(), server(engine, inst))
    engine.drain()
    names = [a.action for a in engine.store.list_actions(inst.id)]
    assert names == [{"confirm_resize": "confirmResize", "revert_resize": "revertResize"}[first], "migrate", "create"]
    assert migration(engine, m).status == (MigrationStatus.CONFIRMED if first == "confirm_resize"
                                           else MigrationStatus.REVERTED)


def test_delete_of_a_resized_server_releases_both_claims(engine: Engine) -> None:
    inst, _ = resized(engine)
    delete_server(engine.service, demo_ctx(), server(engine, inst))
    engine.drain()
    assert claims(engine, inst) == set() and usage(engine) == {}
