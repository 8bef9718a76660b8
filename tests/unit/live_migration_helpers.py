"""Helpers for the live-migration tests on the in-memory engine (live_migrate, abort, force-complete).

Servers boot on compute-kvm-1 (QEMU 8002000, Haswell, ceph-a). From there the weigher
(most free RAM) ranks compute-kvm-3 (nfs-b: block migration) before compute-kvm-2
(ceph-a: shared storage); the xen hosts are filtered out by hypervisor type.
"""
from __future__ import annotations

from typing import Any

from compute.actions import live_migrate as live_migrate_action
from compute.models import Instance
from compute.states import VmState
from tests.support.contexts import admin_ctx
from tests.support.engine import Engine

SOURCE = "compute-kvm-1"


def boot_on_source(engine: Engine, **changes: Any) -> Instance:
    inst = engine.boot(availability_zone=f"nova:{SOURCE}", ctx=admin_ctx())
    assert inst.host == SOURCE and inst.vm_state == VmState.ACTIVE
    if changes:
        engine.store.update_instance(inst.id, lambda i: [setattr(i, k, v) for k, v in changes.items()])
    return engine.store.get_instance(inst.id)


def migrate(engine: Engine, inst: Instance, *, host: str | None = None, block: bool | None = None,
            force: bool = False, before_reply: bool = False, ctx: Any = None, **extra: Any) -> tuple[str, Any]:
    ctx = ctx or admin_ctx()
    request = live_migrate_action.LiveMigrationRequest(host=host, block_migration=block, force=force,
                                      checks_before_reply=before_reply, **extra)
    migration = live_migrate_action.live_migrate(engine.service, ctx, engine.store.get_instance(inst.id), request)
    return ctx.request_id, migration


def status_of(engine: Engine, migration: Any) -> str:
    return engine.store.get_migration(migration.id).status


def events(engine: Engine, request_id: str) -> list[Any]:
    return engine.store.list_events(request_id)


def slow_copy(engine: Engine) -> None:
    engine.fleet.set_durations({"live_migration_per_gb": 100.0})
