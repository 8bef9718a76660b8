"""An action's accept on the server as the API read it (compute/store/accepts.py): one script that
compare-and-sets the record against the JSON read and writes the action, its run and a move's
migration with their indexes, or writes nothing and leaves the accept to the WATCH path.

On real Redis, accepts racing on one server from the same stale read: exactly one is accepted and
the others are the 409 of a conflicting action, and the indexes hold only the winner's records.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from compute import errors
from compute.actions.live_migrate import LiveMigrationRequest, live_migrate
from compute.actions.pause import pause
from compute.context import RequestContext
from compute.models import Instance, new_request_id, utcnow
from compute.service import ComputeService
from compute.settings import Settings
from compute.states import MigrationStatus, TaskState, VmState
from compute.store import Store
from tests.contract.conftest import SMALL, Backend, small_host
from tests.support.concurrency import at_once, raised


@dataclass
class RecordedQueue:
    """compute.queue.Enqueuer that keeps what it was given."""

    sent: list[str] = field(default_factory=list)

    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0, *, action: str = "",
                server_id: str = "") -> None:
        self.sent.append(request_id)


def admin() -> RequestContext:
    return RequestContext(user_id="admin", project_id="admin", roles=["admin"], request_id=new_request_id())


def active_server(store: Store, host: str = "compute-1") -> Instance:
    inst = Instance(name="vm", project_id="demo", user_id="demo", flavor=SMALL, host=host, node=host,
                    vm_state=VmState.ACTIVE, power_state=1, launched_at=utcnow())
    store.put_instance(inst)
    return inst


def service_on(store: Store) -> tuple[ComputeService, RecordedQueue]:
    queue = RecordedQueue()
    return ComputeService(store, queue, Settings()), queue


def accept_live(service: ComputeService, read: Instance) -> str:
    try:
        live_migrate(service, admin(), read, LiveMigrationRequest(host=None, block_migration=None))
    except errors.Conflict:
        return "409"
    return "202"


def test_accept__writes_what_the_watch_path_writes(backend: Backend) -> None:
    store = backend.store()
    store.put_host(small_host("compute-1"))
    read = active_server(store)
    service, queue = service_on(store)
    status_before = store.status_counts()
    migration = live_migrate(service, admin(), read, LiveMigrationRequest(host=None, block_migration=None))
    stored = store.get_instance(read.id)
    assert stored is not None and stored.task_state == TaskState.MIGRATING
    assert migration.id > 0 and store.get_migration(migration.id) == migration
    assert store.get_migration_by_uuid(migration.uuid) == migration
    assert [m.id for m in store.migrations_in_progress_on("compute-1")] == [migration.id]
    assert store.list_migrations(read.id) == [migration]
    assert store.page_migrations(10, project_id="admin") == [migration]
    (action,) = store.list_actions(read.id)
    assert action.request_id == migration.request_id == queue.sent[0] and action.seq > 0
    run = store.get_run(action.request_id)
    assert run is not None and run.params["migration_uuid"] == migration.uuid
    assert action.request_id in store.due_runs(now=float("inf"))
    assert ("admin", "admin") in store.identities()
    counts = store.status_counts()
    assert counts.get("ACTIVE", 0) == status_before.get("ACTIVE", 0) - 1
    assert counts.get("MIGRATING", 0) == status_before.get("MIGRATING", 0) + 1


def test_accept__on_a_stale_read_is_decided_on_the_stored_record(backend: Backend) -> None:
    store = backend.store()
    read = active_server(store)
    service, queue = service_on(store)

    def lock(inst: Instance) -> None:
        inst.locked, inst.locked_by = True, "owner"

    store.update_instance(read.id, lock)  # moved on since the API read it
    with pytest.raises(errors.Conflict):
        pause(service, RequestContext(user_id="demo", project_id="demo", request_id=new_request_id()), read)
    assert queue.sent == [] and store.list_actions(read.id) == []
    store.update_instance(read.id, lambda inst: inst.metadata.update(note="changed"))
    pause(service, admin(), read)  # stale but allowed: the WATCH path accepts it on the stored record
    stored = store.get_instance(read.id)
    assert stored is not None and stored.task_state == TaskState.PAUSING and stored.metadata["note"] == "changed"


def test_accept__racing_accepts_from_one_read_have_exactly_one_winner(real_backend: Backend) -> None:
    store = real_backend.store()
    store.put_host(small_host("compute-1"))
    for _ in range(10):
        read = active_server(store)

        def one(_index: int, read: Instance = read) -> str:
            own = Store(real_backend.client, prefix=real_backend.prefix)
            return accept_live(service_on(own)[0], read)

        answers = at_once(4, one)
        assert raised(answers) == []
        assert sorted(answers) == ["202", "409", "409", "409"]
        (migration,) = store.list_migrations(read.id)
        assert migration.status == MigrationStatus.ACCEPTED
        assert len(store.list_actions(read.id)) == 1
    in_progress = store.migrations_in_progress_on("compute-1")
    assert len(in_progress) == 10 == len({m.id for m in in_progress})


def test_accept__script_lost_by_the_server_is_sent_again(fake_backend: Backend) -> None:
    """A Redis restarted (or SCRIPT FLUSHed) since the script was loaded answers NOSCRIPT: the accept
    sends the script again and is made, instead of failing or falling back."""
    store = fake_backend.store()
    service, queue = service_on(store)
    pause(service, admin(), active_server(store))
    fake_backend.client.script_flush()
    read = active_server(store)
    pause(service, admin(), read)
    stored = store.get_instance(read.id)
    assert stored is not None and stored.task_state == TaskState.PAUSING
    assert len(queue.sent) == 2 and len(store.list_actions(read.id)) == 1
