"""Helpers for the cold-migration tests on the in-memory engine (migrate, confirmResize, revertResize, cancel).

The fleet: a flavor-2 server boots on compute-kvm-3 (most free RAM); a migration then
tries compute-kvm-1, compute-kvm-2, compute-kvm-4 in that order ([scheduler] max_attempts 3;
the other hosts have the same free RAM, so the weigher's tie goes by name).
"""
from __future__ import annotations

from typing import Any

import pytest

from compute import migrations
from compute.actions import confirm_resize, revert_resize
from compute.actions.migrate import migrate as cold_migrate
from compute.context import RequestContext
from compute.models import Instance, Migration
from compute.states import VmState
from tests.support.contexts import admin_ctx
from tests.support.engine import Engine

SOURCE = "compute-kvm-3"
ALTERNATES = ["compute-kvm-1", "compute-kvm-2", "compute-kvm-4"]
MIGRATE_EVENTS = ["conductor_migrate_server", "cold_migrate", "compute_prep_resize", "compute_resize_instance",
                  "compute_finish_resize"]

FINISH_THE_MOVE = {"confirm_resize": confirm_resize.confirm_resize, "revert_resize": revert_resize.revert_resize}


# ---- helpers ---------------------------------------------------------------------------------
def events(engine: Engine, request_id: str) -> list[tuple[str, str | None, str | None]]:
    return [(e.event, e.result, e.host) for e in engine.store.list_events(request_id)]


def claims(engine: Engine, inst: Instance) -> set[str]:
    return engine.store.hosts_claimed_by(inst.id)


def usage(engine: Engine) -> dict[str, int]:
    """running_vms per host that has any: a claim counted twice or leaked shows here."""
    return {h.name: u for h in engine.store.list_hosts() if (u := engine.store.get_usage(h.name).running_vms)}


def server(engine: Engine, inst: Instance) -> Instance:
    found = engine.store.get_instance(inst.id)
    assert found is not None
    return found


def migrate(engine: Engine, inst: Instance, host: str | None = None,
            ctx: RequestContext | None = None) -> tuple[RequestContext, Migration]:
    ctx = ctx or admin_ctx()
    migration = cold_migrate(engine.service, ctx, server(engine, inst), host=host)
    return ctx, migration


def migration(engine: Engine, m: Migration) -> Migration:
    found = engine.store.get_migration(m.id)
    assert found is not None
    return found


def resized(engine: Engine, **boot: Any) -> tuple[Instance, Migration]:
    inst = engine.boot(**boot)
    _, m = migrate(engine, inst)
    engine.drain()
    assert server(engine, inst).vm_state == VmState.RESIZED
    return inst, m


def set_fields(engine: Engine, inst: Instance, **changes: Any) -> None:
    engine.store.update_instance(inst.id, lambda i: [setattr(i, k, v) for k, v in changes.items()] and None)


def statuses_written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every migration status written after creation, in order, consecutive repeats folded."""
    seen: list[str] = []
    original = migrations.stage_migration

    def spy(store: Any, pipe: Any, m: Migration) -> None:
        if not seen or seen[-1] != m.status:
            seen.append(m.status)
        original(store, pipe, m)

    monkeypatch.setattr(migrations, "stage_migration", spy)
    return seen
