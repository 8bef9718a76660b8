"""Helpers for the live-migration tests on the real stack (real Redis, real ``celery worker`` processes)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from compute.actions import live_migrate as live_migrate_action
from compute.actions.create_server import create_server
from compute.models import Instance, Migration
from compute.states import LIVE_ENDED_IN_FAILURE
from compute.store import Store
from tests.integration.conftest import WorkerProcess
from tests.support.contexts import IMAGE_ID, admin_ctx
from tests.support.wait import wait_for
from workers.runtime import Runtime

SOURCE = "compute-kvm-1"


def describe(store: Store, request_id: str) -> str:
    run = store.get_run(request_id)
    events = [(e.event, e.host, e.result) for e in store.list_events(request_id)]
    migrations = [(m.id, m.status, m.dest_compute) for m in store.list_migrations()]
    return f"run={run.model_dump() if run else None}\nevents={events}\nmigrations={migrations}"


def boot_on(runtime: Runtime, host: str = SOURCE, flavor_id: str = "2", name: str = "vm") -> Instance:
    """A server built by the create flow (a worker must be running), placed on ``host``."""
    ctx = admin_ctx()
    inst = create_server(runtime.service, ctx, name=name, flavor_id=flavor_id, image_id=IMAGE_ID,
                                         availability_zone=f"nova:{host}")
    return wait_for(lambda: (i := runtime.store.get_instance(inst.id)) is not None and i.vm_state == "active" and i,
                    message=lambda: f"{inst.id} to build\n{describe(runtime.store, ctx.request_id)}")


def live_migrate(runtime: Runtime, inst: Instance, host: str | None = None) -> tuple[str, Migration]:
    ctx = admin_ctx()
    request = live_migrate_action.LiveMigrationRequest(host=host, block_migration=None)
    current = runtime.store.get_instance(inst.id)
    assert current is not None
    return ctx.request_id, live_migrate_action.live_migrate(runtime.service, ctx, current, request)


def wait_migration_ended(store: Store, migration: Migration, request_id: str) -> Migration:
    """Until the record is final and the flow that drives it has finished."""
    def ended() -> Migration | None:
        record, run = store.get_migration(migration.id), store.get_run(request_id)
        final = record is not None and record.status in ("completed", *LIVE_ENDED_IN_FAILURE)
        return record if final and run is not None and run.finished else None

    return wait_for(ended, message=lambda: f"migration {migration.id} to end\n{describe(store, request_id)}")


def pool_processes(worker: WorkerProcess) -> list[int]:
    """The prefork pool children of a worker's main process (Linux /proc)."""
    children = Path(f"/proc/{worker.proc.pid}/task/{worker.proc.pid}/children")
    return [int(pid) for pid in children.read_text().split()]


def freeze_pool(worker: WorkerProcess) -> None:
    """SIGSTOP the pool children: the main process still takes a message, nothing runs it."""
    pids = wait_for(lambda: pool_processes(worker), message=f"the pool processes of {worker.name}")
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
