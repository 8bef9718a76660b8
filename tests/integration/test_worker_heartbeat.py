"""Worker heartbeats on the real Redis from real ``compute-actions worker`` processes, and what reads them:
the API's ``/readyz`` and ``compute-actions health --worker NAME``.

Needs the heartbeat hook in ``run_worker`` (workers/heartbeat.py ``attach_to_worker``).
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from api.app import create_app
from compute.settings import REPO_ROOT
from tests.integration.conftest import Namespace, StartWorker, WorkerProcess
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

INTERVAL = 0.5
TTL = 3.0
HEALTH = {"HEALTH__HEARTBEAT_INTERVAL_SECONDS": INTERVAL, "HEALTH__HEARTBEAT_TTL_SECONDS": TTL}


@pytest.fixture
def beating_namespace(namespace: Namespace, monkeypatch: pytest.MonkeyPatch) -> Namespace:
    """The test's namespace, with workers that beat every 0.5 s and expire after 3 s."""
    base = namespace.worker_env

    def env() -> dict[str, str]:
        found = base()
        found.update({f"COMPUTE_ACTIONS_{k}": str(v) for k, v in HEALTH.items()})
        return found

    monkeypatch.setattr(namespace, "worker_env", env)
    return namespace


def node(worker: WorkerProcess) -> str:
    return f"{worker.name}@{socket.gethostname()}"


def health(namespace: Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.cli", "health", *args], check=False, cwd=str(REPO_ROOT),
                          env=namespace.worker_env(), capture_output=True, text=True, timeout=60)


def readyz(runtime: Runtime) -> tuple[int, Any]:
    app = create_app(runtime.settings, runtime.service)
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()


def live_names(runtime: Runtime) -> list[str]:
    return [beat.name for beat in runtime.store.live_workers()]


def test_a_worker_beats_with_its_name_and_pid_and_readyz_counts_it(
        beating_namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    assert readyz(runtime) == (503, {"store": "ok", "broker": "ok", "workers": 0, "failed": ["workers"]})
    worker = start_worker("hb")
    wait_for(lambda: node(worker) in live_names(runtime), 30, "the worker's first heartbeat")
    beat = runtime.store.get_heartbeat(node(worker))
    assert beat is not None
    assert (beat.pid, beat.hostname, beat.ttl_seconds) == (worker.proc.pid, socket.gethostname(), TTL)
    first = beat.time
    wait_for(lambda: (b := runtime.store.get_heartbeat(node(worker))) is not None and b.time != first, 10,
             "a second heartbeat")
    assert readyz(runtime) == (200, {"store": "ok", "broker": "ok", "workers": 1})

    ok = health(beating_namespace, "--worker", f"{worker.name}@%h")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"worker {node(worker)}: alive (pid {worker.proc.pid}" in ok.stdout
    missing = health(beating_namespace, "--worker", "nobody@%h")
    assert missing.returncode == 1 and "no heartbeat" in missing.stdout


def test_a_killed_worker_is_unhealthy_at_once_and_gone_after_its_ttl(
        beating_namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    worker = start_worker("hbkill")
    wait_for(lambda: node(worker) in live_names(runtime), 30, "the worker's first heartbeat")
    worker.kill()
    killed_at = time.monotonic()
    # Its record is still there, but its process is not: the health check says so before the TTL.
    dead = health(beating_namespace, "--worker", f"{worker.name}@%h")
    assert dead.returncode == 1 and f"its process {worker.proc.pid} is gone" in dead.stdout, dead.stdout
    wait_for(lambda: node(worker) not in live_names(runtime), TTL + 5, "the killed worker's record to expire")
    assert time.monotonic() - killed_at >= TTL - INTERVAL - 0.5
    assert readyz(runtime) == (503, {"store": "ok", "broker": "ok", "workers": 0, "failed": ["workers"]})


def test_a_warm_shutdown_removes_the_record_at_once(
        beating_namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    first, second = start_worker("hba"), start_worker("hbb")
    wait_for(lambda: {node(first), node(second)} <= set(live_names(runtime)), 30, "both workers' heartbeats")
    assert readyz(runtime)[1]["workers"] == 2
    first.terminate()
    # Removed by the shutdown itself: the last beat's record would live TTL - INTERVAL = 2.5 s more.
    wait_for(lambda: node(first) not in live_names(runtime), 2.0, "the record to go with the warm shutdown")
    assert readyz(runtime) == (200, {"store": "ok", "broker": "ok", "workers": 1})
    first.proc.wait(timeout=30)
