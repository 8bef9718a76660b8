"""Flower watching the real stack: real Redis, a real worker process, a real Flower process.

An operator finds a server's deliveries in Flower by its id, each named by its action
(Nova's string), and an action that ended in error as a FAILURE carrying its reason,
through Flower's HTTP API (what its web pages show). The failed delivery is acked, not
retried: the action ran once and the queue holds nothing of it afterwards.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from compute.actions.create_server import create_server
from compute.actions.inject_network_info import inject_network_info
from compute.instance_actions import CREATE, INJECT_NETWORK_INFO
from compute.settings import REPO_ROOT
from tests.integration.conftest import Namespace, StartWorker
from tests.integration.quota_fixtures import free_port
from tests.support.contexts import IMAGE_ID, admin_ctx, demo_ctx
from tests.support.wait import wait_for
from workers.celery_app import RUN_ACTION
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

FLOWER_AUTH = ("ops", "watching")
FLOWER_STOP_TIMEOUT = 15.0
REASON = "the metadata service refused the network info"


@dataclass
class FlowerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tasks(self, **query: str) -> dict[str, dict[str, Any]]:
        """Flower's ``/api/tasks`` with ``query`` (state, search, taskname...): task id -> task."""
        response = requests.get(f"{self.url}/api/tasks", params=query, auth=FLOWER_AUTH, timeout=10)
        response.raise_for_status()
        return response.json()


def flower_answers(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(f"{url}/healthcheck", timeout=2).status_code == 200
    return False


@pytest.fixture
def flower(namespace: Namespace, tmp_path: Path) -> Iterator[FlowerProcess]:
    """``compute-actions flower`` on the test's broker, on a free loopback port, with basic auth."""
    port = free_port()
    log_path = tmp_path / "flower.log"
    cmd = [sys.executable, "-m", "workers.cli", "flower", "--address=127.0.0.1", f"--port={port}",
           f"--basic-auth={':'.join(FLOWER_AUTH)}"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=namespace.worker_env(), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    flower = FlowerProcess(proc, f"http://127.0.0.1:{port}", log_path)
    try:
        def up() -> bool:
            assert proc.poll() is None, f"flower exited with {proc.returncode}:\n{flower.log()}"
            return flower_answers(flower.url)

        wait_for(up, 60, lambda: f"flower to answer; log:\n{flower.log()}", interval=0.2)
        yield flower
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=FLOWER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=FLOWER_STOP_TIMEOUT)


def test_flower_names_each_delivery_by_its_action_and_shows_a_failed_action_with_its_reason(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker, flower: FlowerProcess) -> None:
    worker = start_worker("watched")
    inst = create_server(runtime.service, demo_ctx(), name="watched", flavor_id="1", image_id=IMAGE_ID)
    wait_for(lambda: (i := runtime.store.get_instance(inst.id)) is not None and i.vm_state == "active",
             message="the server to boot")

    # Searching the server id finds its build, under the action's name, green.
    built = wait_for(lambda: {k: t for k, t in flower.tasks(search=inst.id).items() if t["state"] == "SUCCESS"},
                     60, lambda: f"Flower to show the build of {inst.id}: {flower.tasks()}\n{flower.log()}")
    assert {t["name"] for t in built.values()} == {CREATE}, built
    assert all(inst.id in t["kwargs"] for t in built.values()), built

    runtime.fleet.add_fault("inject_network_info", mode="fail", times=1, message=REASON)
    ctx = admin_ctx()
    inject_network_info(runtime.service, ctx, runtime.store.get_instance(inst.id))  # type: ignore[arg-type]
    wait_for(lambda: (r := runtime.store.get_run(ctx.request_id)) is not None and r.finished,
             message="injectNetworkInfo to end")
    run = runtime.store.get_run(ctx.request_id)
    assert run is not None and run.status == "error" and REASON in (run.error or ""), run

    failed = wait_for(lambda: flower.tasks(state="FAILURE", search=inst.id), 60,
                      lambda: f"Flower to show the failure: {flower.tasks(search=inst.id)}\n{flower.log()}")
    assert len(failed) == 1, failed
    (task_id, task), = failed.items()
    assert task["name"] == INJECT_NETWORK_INFO
    assert task_id == f"{ctx.request_id}:{run.wake}"  # the delivery that ended it
    assert ctx.request_id in task["args"] and inst.id in task["kwargs"], task
    assert "ActionFailed" in task["exception"] and REASON in task["exception"], task
    # The same failure, found the way the README says: by name and kwargs.
    assert set(flower.tasks(state="FAILURE", taskname=INJECT_NETWORK_INFO,
                            search=f"kwargs:server_id={inst.id}")) == {task_id}

    # Its wait was a green row with a one-word result.
    waited = flower.tasks(search=ctx.request_id, state="SUCCESS")
    assert [(t["name"], t["result"]) for t in waited.values()] == [(INJECT_NETWORK_INFO, "'waiting'")], waited

    # Not retried, and acked: the failing delivery ran once, nothing is left in the queue or unacked.
    assert [o for o in worker.outcomes(ctx.request_id) if o[1] == "error"] == [(run.wake, "error")]
    wait_for(lambda: namespace.queue_length() == 0 and not namespace.unacked_for_queue(), 30,
             "the failed delivery to be acked")
    assert "Traceback" not in worker.log()  # an action's failure is an expected outcome, not a worker error


@pytest.mark.engine(start_grace_seconds=60.0)  # the reaper leaves the queued action to the old message
def test_a_message_queued_under_the_old_single_task_name_is_still_delivered(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    """Queued before the upgrade: ``compute_actions.run_action`` with ``[request id, wake]`` only."""
    inst = create_server(runtime.service, demo_ctx(), name="old", flavor_id="1", image_id=IMAGE_ID)
    rid = runtime.store.list_actions(inst.id)[0].request_id
    namespace.lose_queued_messages()  # the message under its new name goes; the old one stands in
    runtime.celery.send_task(RUN_ACTION, args=[rid, 0], queue=namespace.queue, task_id=f"{rid}:0")
    worker = start_worker("upgraded")
    wait_for(lambda: (r := runtime.store.get_run(rid)) is not None and r.finished,
             message=lambda: f"the old message to build the server\n{worker.log()}")
    assert runtime.store.get_run(rid).status == "done"  # type: ignore[union-attr]
    assert f"{RUN_ACTION} server None: action {rid} wake 0: waiting" in worker.log()
    assert "reaped" not in worker.log()
