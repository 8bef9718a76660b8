"""A crash between the store write and the publish, with store and broker on one Redis.

An action is accepted in one Redis MULTI (task_state, instance action, flow run) and then
published to the broker (compute/service.py). These tests cut that in two, with a real
worker (and its reaper) on a private redis-server (tests/integration/test_redis_restart.py):
- the API process dies right after the MULTI: the caller gets no answer, nothing is
  queued, and the reaper queues the action after ``start_grace_seconds``; it runs once;
- Redis dies right after the MULTI: the publish fails, the undo cannot reach Redis either,
  so the caller gets 503 although the action was recorded (AOF keeps it); once Redis is
  back the reaper queues it, and it runs once.
README, "When Redis restarts", says the same to the operator.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from compute.actions.create_backup import create_backup
from compute.actions.create_server import create_server
from compute.models import Instance
from compute.store import Store
from tests.integration.conftest import Namespace, StartWorker, WorkerProcess
from tests.integration.test_redis_restart import namespace_on
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import IMAGE_ID, admin_ctx
from tests.support.crash import SimulatedCrash
from tests.support.redis_server import RedisServer, redis_server
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

ADMIN = {"X-Auth-Token": "admin:admin"}
BACKUP_EVENT = "compute_backup_instance"


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def namespace(private_redis: RedisServer) -> Iterator[Namespace]:
    """Overrides the conftest's: ``runtime`` and ``start_worker`` then use the private Redis."""
    with namespace_on(private_redis) as ns:
        yield ns


def booted(runtime: Runtime) -> Instance:
    ctx = admin_ctx()
    inst = create_server(runtime.service, ctx, name="vm", flavor_id="1", image_id=IMAGE_ID)
    wait_for(lambda: (r := runtime.store.get_run(ctx.request_id)) is not None and r.status == "done",
             message=f"server {inst.id} to build")
    found = runtime.store.get_instance(inst.id)
    assert found is not None
    return found


def backups(store: Store, inst: Instance) -> dict[str, str]:
    return {i.name: i.status for i in store.list_images() if i.properties.get("instance_uuid") == inst.id}


def assert_recorded_not_queued(namespace: Namespace, store: Store, inst: Instance, request_id: str) -> None:
    """The MULTI happened, the publish did not: an accepted action that no message will deliver."""
    run = store.get_run(request_id)
    assert run is not None and (run.status, run.wake, run.deliveries) == ("queued", 0, 0), run
    action = store.get_action(request_id)
    assert action is not None and action.finish_time is None, action
    server = store.get_instance(inst.id)
    assert server is not None and server.task_state == "image_backup"
    assert backups(store, inst) == {"b1": "queued"}
    assert namespace.queue_length() == 0


def assert_ran_once_by_the_reaper(runtime: Runtime, worker: WorkerProcess, inst: Instance, request_id: str) -> None:
    store = runtime.store
    run = wait_for(lambda: (r := store.get_run(request_id)) is not None and r.finished and r,
                   message=lambda: f"{request_id} to finish: {store.get_run(request_id)}")
    assert (run.status, run.error, run.reaps) == ("done", None, 0), run  # queued as it was: no reap counted
    assert f"reaped {request_id} (status queued" in worker.log()
    events = store.list_events(request_id)
    assert [(e.event, e.result) for e in events] == [(BACKUP_EVENT, "Success")], events
    action = store.get_action(request_id)
    assert action is not None and action.finish_time is not None and action.message is None, action
    server = store.get_instance(inst.id)
    assert server is not None and (server.vm_state, server.task_state) == ("active", None)
    assert backups(store, inst) == {"b1": "active"}
    assert runtime.fleet.operation_count("snapshot") == 1
    assert_claims_follow_servers(store)


def test_api_dies_after_the_store_write__the_reaper_queues_the_action_once(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = start_worker("w1")
    inst = booted(runtime)

    def die(*_: Any, **__: Any) -> None:
        raise SimulatedCrash("the API process died before publishing")

    monkeypatch.setattr(runtime.enqueuer, "enqueue", die)
    ctx = admin_ctx()
    with pytest.raises(SimulatedCrash):  # the caller's connection just drops: no answer at all
        create_backup(runtime.service, ctx, inst, name="b1", backup_type="daily", rotation=2)
    monkeypatch.undo()

    assert_recorded_not_queued(namespace, runtime.store, inst, ctx.request_id)
    assert_ran_once_by_the_reaper(runtime, worker, inst, ctx.request_id)


def test_redis_dies_after_the_store_write__503_then_the_reaper_runs_it_once(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker, private_redis: RedisServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    worker = start_worker("w1")
    inst = booted(runtime)
    publish = runtime.enqueuer.enqueue

    def kill_redis_then_publish(request_id: str, wake: int, countdown: float = 0.0, **target: str) -> None:
        private_redis.kill()
        publish(request_id, wake, countdown, **target)

    monkeypatch.setattr(runtime.enqueuer, "enqueue", kill_redis_then_publish)
    client = create_app(namespace.settings, runtime.service).test_client()
    response = client.post(f"/v2.1/servers/{inst.id}/action", headers=ADMIN,
                           json={"createBackup": {"name": "b1", "backup_type": "daily", "rotation": 2}})
    monkeypatch.undo()

    assert response.status_code == 503, response.get_data(as_text=True)
    assert list(response.get_json()) == ["serviceUnavailable"]
    request_id = response.headers["x-openstack-request-id"]
    private_redis.start()  # same port and directory: the AOF brings the MULTI back, the undo never ran
    assert_recorded_not_queued(namespace, runtime.store, inst, request_id)
    assert_ran_once_by_the_reaper(runtime, worker, inst, request_id)
    assert worker.alive()
