"""The periodic confirmer: the window, Nova's per-migration rules, and many sweepers at once."""
from __future__ import annotations

import time
from typing import Any

import pytest

from compute import migrations
from compute.actions import confirm_resize
from compute.actions.migrate import migrate as cold_migrate
from compute.models import Instance, Migration
from compute.states import MigrationStatus, TaskState, VmState
from compute.store import iso_to_epoch
from tests.support.concurrency import at_once
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.engine import Engine
from workers.auto_confirm import AutoConfirmer, AutoConfirmThread

WINDOW = 60


@pytest.fixture
def confirmer(engine: Engine) -> AutoConfirmer:
    engine.settings.resize_confirm_window = WINDOW
    return AutoConfirmer(engine.service)


def resized(engine: Engine, name: str = "vm") -> tuple[Instance, Migration]:
    inst = engine.boot(name=name)
    migration = cold_migrate(engine.service, admin_ctx(), inst)
    engine.drain()
    found = engine.store.get_migration(migration.id)
    assert found is not None and found.status == MigrationStatus.FINISHED
    return inst, found


def after_window(migration: Migration, extra: float = 1.0) -> float:
    return iso_to_epoch(migration.updated_at) + WINDOW + extra


def status(engine: Engine, migration: Migration) -> str:
    return engine.store.get_migration(migration.id).status  # type: ignore[union-attr]


def confirms(engine: Engine, inst: Instance) -> list[Any]:
    return [a for a in engine.store.list_actions(inst.id) if a.action == "confirmResize"]


def test_window_zero__never_confirms(engine: Engine) -> None:
    _, migration = resized(engine)
    assert engine.settings.resize_confirm_window == 0
    assert AutoConfirmer(engine.service).sweep(now=after_window(migration, 10_000)) == []
    assert status(engine, migration) == MigrationStatus.FINISHED


def test_confirms_only_what_waited_longer_than_the_window(engine: Engine, confirmer: AutoConfirmer) -> None:
    inst, migration = resized(engine)
    assert confirmer.sweep(now=after_window(migration, -5)) == []
    [request_id] = confirmer.sweep(now=after_window(migration))
    engine.drain()

    after = engine.store.get_instance(inst.id)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    assert status(engine, migration) == MigrationStatus.CONFIRMED
    assert engine.store.hosts_claimed_by(inst.id) == {after.host}
    action = engine.store.get_action(request_id)
    assert (action.action, action.user_id, action.project_id, action.message) == ("confirmResize", None, None, None)
    assert [e.event for e in engine.store.list_events(request_id)] == ["compute_confirm_resize"]


def test_locked_servers_are_confirmed_too(engine: Engine, confirmer: AutoConfirmer) -> None:
    inst, migration = resized(engine)
    engine.store.update_instance(inst.id, lambda i: setattr(i, "locked", True))
    assert len(confirmer.sweep(now=after_window(migration))) == 1


@pytest.mark.parametrize("changes, outcome", [
    ({"vm_state": VmState.ERROR}, MigrationStatus.ERROR),
    ({"vm_state": VmState.ACTIVE}, MigrationStatus.ERROR),
    ({"task_state": TaskState.DELETING}, MigrationStatus.FINISHED),
    ({"deleted": True}, MigrationStatus.ERROR),
])
def test_nova_rules_for_servers_not_waiting_for_a_confirm(engine: Engine, confirmer: AutoConfirmer,
                                                          changes: dict[str, Any], outcome: str) -> None:
    inst, migration = resized(engine)

    def change(i: Instance) -> None:
        for key, value in changes.items():
            setattr(i, key, value)

    engine.store.update_instance(inst.id, change)
    assert confirmer.sweep(now=after_window(migration)) == []
    assert status(engine, migration) == outcome
    assert confirms(engine, inst) == []


def test_source_down__skipped_and_confirmed_on_a_later_sweep(engine: Engine, confirmer: AutoConfirmer) -> None:
    inst, migration = resized(engine)
    engine.fleet.set_host_state(migration.source_compute, up=False)
    assert confirmer.sweep(now=after_window(migration)) == []
    assert status(engine, migration) == MigrationStatus.FINISHED
    engine.fleet.set_host_state(migration.source_compute, up=True)
    assert len(confirmer.sweep(now=after_window(migration))) == 1


def test_a_confirm_already_asked_for_is_not_repeated(engine: Engine, confirmer: AutoConfirmer) -> None:
    inst, migration = resized(engine)
    confirm_resize.confirm_resize(engine.service, demo_ctx(), inst)
    assert confirmer.sweep(now=after_window(migration)) == []
    engine.drain()
    assert len(confirms(engine, inst)) == 1


def test_many_sweepers_at_once__each_server_confirmed_once(engine: Engine, confirmer: AutoConfirmer) -> None:
    servers = [resized(engine, name=f"vm{i}") for i in range(4)]
    now = max(after_window(m) for _, m in servers)
    sweepers = [AutoConfirmer(engine.service) for _ in range(6)]
    started = at_once(len(sweepers), lambda index: sweepers[index].sweep(now=now))
    engine.drain()

    assert sum(len(s) for s in started) == len(servers)
    for inst, migration in servers:
        assert len(confirms(engine, inst)) == 1
        assert status(engine, migration) == MigrationStatus.CONFIRMED
    assert engine.fleet.operation_count("confirm_migration") == len(servers)


def test_thread__sweeps_periodically_and_stops(engine: Engine) -> None:
    engine.settings.resize_confirm_window = 1
    engine.settings.periodic_interval_seconds = 0.05
    inst, migration = resized(engine)
    thread = AutoConfirmThread(engine.service)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while status(engine, migration) != MigrationStatus.CONFIRMING and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        thread.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert status(engine, migration) == MigrationStatus.CONFIRMING
    engine.drain()
    assert status(engine, migration) == MigrationStatus.CONFIRMED


def test_thread__idle_when_the_window_is_zero(engine: Engine) -> None:
    thread = AutoConfirmThread(engine.service)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_sweeper_overtaken_between_its_read_and_its_write_records_nothing(
        engine: Engine, confirmer: AutoConfirmer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process confirms the server after this sweeper found it finished: the
    compare-and-set re-reads the migration, so this one loses and records no action."""
    inst, migration = resized(engine)
    other = AutoConfirmer(engine.service)
    original = migrations.finished_migration

    def overtaken(store: Any, instance_id: str) -> Migration | None:
        found = original(store, instance_id)
        monkeypatch.setattr(migrations, "finished_migration", original)
        assert len(other.sweep(now=after_window(migration))) == 1
        return found

    monkeypatch.setattr(migrations, "finished_migration", overtaken)
    assert confirmer.sweep(now=after_window(migration)) == []
    engine.drain()
    assert len(confirms(engine, inst)) == 1
    assert engine.fleet.operation_count("confirm_migration") == 1
