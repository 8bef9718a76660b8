"""``compute-actions api`` under real gunicorn against the real Redis: slow clients cannot block it.

With the old sync workers, two clients that sent ``Content-Length: 1000`` and stalled held
both workers, and every other request waited for gunicorn's 90 s timeout. Also here: the
optional ``[metrics] bind``, a listener that serves /metrics and nothing else.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.conftest import Namespace
from tests.support.wait import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.integration]

ADMIN = {"X-Auth-Token": "admin:admin"}
STALLED_BODY = (b"POST /v2.1/servers/00000000-0000-4000-8000-000000000000/action HTTP/1.1\r\nHost: t\r\n"
                b"X-Auth-Token: admin:admin\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"os-")
STALLED_HEADERS = b"GET /v2.1/servers HTTP/1.1\r\nHost: t\r\nX-Auth-To"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def get(self, path: str, timeout: float, headers: dict[str, str] | None = None,
            port: int | None = None) -> tuple[int, bytes, float]:
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=ADMIN if headers is None else headers)
            response = conn.getresponse()
            return response.status, response.read(), time.monotonic() - started
        finally:
            conn.close()


@pytest.fixture
def start_api(namespace: Namespace, tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    started: list[ApiProcess] = []

    def start(workers: int = 2, **settings: str) -> ApiProcess:
        port = free_port()
        env = namespace.worker_env()
        env.update({f"COMPUTE_ACTIONS_{k}": v for k, v in settings.items()})
        env["XDG_RUNTIME_DIR"] = str(tmp_path)  # gunicorn's control socket: this test's own
        log = tmp_path / f"api-{port}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        api = ApiProcess(proc, port, log)
        started.append(api)

        def answers() -> bool:
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                return api.get("/v2.1/servers", timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(answers, 60, lambda: f"compute-actions api on {port}: {log.read_text(errors='replace')[-2000:]}")
        return api

    yield start
    for api in started:
        if api.proc.poll() is None:
            os.killpg(api.proc.pid, signal.SIGTERM)
            try:
                api.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(api.proc.pid, signal.SIGKILL)
                api.proc.wait(timeout=10)


def stall(port: int, count: int, payload: bytes, stack: ExitStack) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
        s.sendall(payload)
        sockets.append(s)
    return sockets


def test_stalled_clients__a_get_still_answers_at_once(start_api: Callable[..., ApiProcess]) -> None:
    """Ten clients stalled in their body and ten in their headers (the old setup fell to two)."""
    api = start_api()
    with ExitStack() as stack:
        stall(api.port, 10, STALLED_BODY, stack)
        stall(api.port, 10, STALLED_HEADERS, stack)
        for _ in range(5):
            status, _, took = api.get("/v2.1/servers", timeout=5)
            assert status == 200 and took < 1.0, took


def test_more_stalled_clients_than_threads__each_is_cut_after_client_timeout(
        start_api: Callable[..., ApiProcess]) -> None:
    """One worker of two threads, six stalled bodies: each holds a thread for one client_timeout at most,
    is answered 408 (not 500), and the GET queued behind them is served within a few of them."""
    api = start_api(workers=1, API__THREADS="2", API__CLIENT_TIMEOUT="1.0")
    with ExitStack() as stack:
        stalled = stall(api.port, 6, STALLED_BODY, stack)  # accepted in order, before the GET
        status, _, took = api.get("/v2.1/servers", timeout=15)
        assert status == 200 and took < 6.0, took
        for s in stalled:
            s.settimeout(10)
            answer = s.recv(64)
            assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"Traceback" not in api.log.read_bytes()


def test_metrics_bind__serves_metrics_there_and_only_there(start_api: Callable[..., ApiProcess]) -> None:
    metrics_port = free_port()
    api = start_api(METRICS__BIND=f"127.0.0.1:{metrics_port}", METRICS__ACCESS="public")
    status, body, _ = api.get("/metrics", timeout=5, headers={}, port=metrics_port)
    assert status == 200 and b"compute_actions_active_actions" in body
    assert api.get("/v2.1/servers", timeout=5, port=metrics_port)[0] == 404
    assert api.get("/metrics", timeout=5, headers={})[0] == 404
    assert api.get("/v2.1/servers", timeout=5)[0] == 200


def test_metrics__admin_only_by_default_under_gunicorn(start_api: Callable[..., ApiProcess]) -> None:
    api = start_api()
    assert api.get("/metrics", timeout=5, headers={})[0] == 401
    assert api.get("/metrics", timeout=5, headers={"X-Auth-Token": "alice:demo"})[0] == 403
    status, body, _ = api.get("/metrics", timeout=5)
    assert status == 200 and b'compute_actions_host_running_vms{host="compute-kvm-1"}' in body
