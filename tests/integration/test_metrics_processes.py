"""Metrics and logs of the real processes: gunicorn's workers add up, a worker serves its own, lines per step.

``compute-actions api`` with two gunicorn workers in multiprocess mode: a scrape, whichever
worker answers it, counts every request, and a worker killed and replaced keeps its counts.
``compute-actions worker`` (prefork) with ``[metrics] worker_bind``: its exporter serves what its
pool child ran; its log has one line per step with the action's fields and none of Celery's
per-delivery lines.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from compute.actions.create_server import create_server
from compute.instance_actions import CREATE
from compute.settings import REPO_ROOT
from tests.integration.conftest import Namespace
from tests.integration.quota_fixtures import free_port
from tests.support.contexts import IMAGE_ID, demo_ctx
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

ADMIN = {"X-Auth-Token": "admin:admin"}
STOP_TIMEOUT = 20.0


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str], name: str) -> Process:
        log_path = tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "workers.cli", *args], cwd=str(REPO_ROOT), env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        started.append(Process(proc, log_path))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    status, body, _ = get_with_headers(port, path, headers)
    return status, body


def get_with_headers(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=ADMIN if headers is None else headers)
        response = conn.getresponse()
        return response.status, response.read().decode(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def start_api(namespace: Namespace, launch: Callable[..., Process], tmp_path: Path, **env: str) -> tuple[Process, int]:
    port = free_port()
    api = launch(["api", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                 {**namespace.worker_env(), "XDG_RUNTIME_DIR": str(tmp_path), **env}, f"api-{port}")

    def answers() -> bool:
        assert api.proc.poll() is None, api.log()
        with contextlib.suppress(OSError):
            return get(port, "/healthz", {})[0] == 200
        return False

    wait_for(answers, 60, lambda: f"the API on {port}: {api.log()[-2000:]}")
    return api, port


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return None


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.add(int(stat.parent.name))
    return found


def test_api__every_gunicorn_worker_counts_into_one_scrape_and_a_replaced_one_keeps_its_counts(
        namespace: Namespace, launch: Callable[..., Process], tmp_path: Path) -> None:
    folder = tmp_path / "api-metrics"
    api, port = start_api(namespace, launch, tmp_path, COMPUTE_ACTIONS_METRICS__ACCESS="public",
                          PROMETHEUS_MULTIPROC_DIR=str(folder))
    workers = wait_for(lambda: len(children_of(api.proc.pid)) == 2 and children_of(api.proc.pid), 30,
                       "two gunicorn workers")
    for _ in range(12):
        assert get(port, "/v2.1/flavors")[0] == 200
    flavors = {"method": "GET", "route": "/v2.1/flavors", "code": "200"}
    for _ in range(4):  # whichever worker answers the scrape
        status, text = get(port, "/metrics", {})
        assert status == 200
        assert sample(text, "compute_actions_http_requests_total", **flavors) == 12
    assert list(folder.glob("*.db")), "multiprocess mode writes its files in PROMETHEUS_MULTIPROC_DIR"

    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in children_of(api.proc.pid) and len(children_of(api.proc.pid)) == 2, 30,
             "gunicorn to replace the killed worker")
    wait_for(lambda: get(port, "/healthz", {})[0] == 200, 30, "the API after the replacement")
    for _ in range(4):
        assert sample(get(port, "/metrics", {})[1], "compute_actions_http_requests_total", **flavors) == 12
    assert "Traceback" not in api.log()
    # The app's access line, with the request id gunicorn's workers answered with.
    assert "GET /v2.1/flavors 200 " in api.log() and " request_id=req-" in api.log()


def test_worker__serves_its_pool_childs_counts_and_logs_one_line_per_step(
        namespace: Namespace, launch: Callable[..., Process], runtime: Runtime) -> None:
    port = free_port()
    env = {**namespace.worker_env(), "COMPUTE_ACTIONS_METRICS__WORKER_BIND": f"127.0.0.1:{port}"}
    worker = launch(["worker", "-c", "1", "-n", f"metrics-{namespace.token}@%h"], env, "worker")
    wait_for(lambda: " ready." in worker.log() or worker.proc.poll() is not None, 90,
             lambda: f"the worker to be ready: {worker.log()}", interval=0.2)
    assert worker.proc.poll() is None, worker.log()

    ctx = demo_ctx()
    inst = create_server(runtime.service, ctx, name="vm", flavor_id="1", image_id=IMAGE_ID)
    wait_for(lambda: (run := runtime.store.get_run(ctx.request_id)) is not None and run.finished, 60,
             lambda: f"the create to end: {worker.log()[-3000:]}")
    assert runtime.store.get_run(ctx.request_id).status == "done"

    def scraped() -> str | None:
        with contextlib.suppress(OSError):
            status, text = get(port, "/metrics", {})
            ended = sample(text, "compute_actions_actions_ended_total", action=CREATE, result="succeeded")
            return text if status == 200 and ended == 1 else None
        return None

    text = wait_for(scraped, 30, lambda: f"the worker's exporter on {port}: {worker.log()[-2000:]}")
    run = runtime.store.get_run(ctx.request_id)
    steps = [s.name for s in runtime.runner.flows[CREATE].steps(run)]
    for step in steps:
        assert sample(text, "compute_actions_step_duration_seconds_count", action=CREATE, step=step) == 1, step

    lines = [line for line in worker.log().splitlines() if " step " in line and ctx.request_id in line]
    assert [line.split(" step ", 1)[1].split(" ", 1)[0] for line in lines] == steps, lines
    for line in lines:
        for field in (f"request_id={ctx.request_id}", f"action={CREATE}", f"server_id={inst.id}", "worker="):
            assert field in line, line
    # Celery's own two lines per delivery ("Task create[...] received", "... succeeded in") are DEBUG now.
    assert f"Task {CREATE}[{ctx.request_id}" not in worker.log()
    assert "celery.app.trace" not in worker.log() and "celery.worker.strategy" not in worker.log()


def test_api__json_logs_are_one_object_a_line_gunicorns_own_included(
        namespace: Namespace, launch: Callable[..., Process], tmp_path: Path) -> None:
    api, port = start_api(namespace, launch, tmp_path, COMPUTE_ACTIONS_LOGGING__FORMAT="json")
    status, _, headers = get_with_headers(port, "/v2.1/flavors")
    assert status == 200
    request_id = headers["x-openstack-request-id"]
    wait_for(lambda: request_id in api.log(), 10, "the access line")
    api.stop()
    lines = [json.loads(line) for line in api.log().splitlines() if line.strip()]
    [access] = [line for line in lines if line.get("request_id") == request_id]
    assert (access["logger"], access["method"], access["route"], access["status"]) == (
        "api.access", "GET", "/v2.1/flavors", 200)
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
