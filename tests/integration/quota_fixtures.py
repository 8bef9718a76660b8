"""The real API (``compute-actions api``: gunicorn, several processes) on this test's namespace, and a client.

Requests go over HTTP from many threads at once, so they land in different gunicorn
processes that share nothing but Redis: what the quota and idempotency races need.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compute.settings import REPO_ROOT
from tests.integration.conftest import Namespace
from tests.support import concurrency
from tests.support.wait import wait_for

API_PROCESSES = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-openstack-request-id")


@dataclass
class ApiProcess:
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def call(self, method: str, path: str, body: Any = None, token: str = "alice:demo",
             headers: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            sent = {"X-Auth-Token": token, "Content-Type": "application/json", **(headers or {})}
            conn.request(method, f"/v2.1{path}", body=None if body is None else json.dumps(body), headers=sent)
            resp = conn.getresponse()
            return Answer(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def at_once(count: int, call: Callable[[int], Answer]) -> list[Answer]:
    """``count`` HTTP calls released together; their answers in thread order (none may raise)."""
    answers = concurrency.at_once(count, call, timeout=120)
    assert concurrency.raised(answers) == []
    return answers  # type: ignore[return-value] - none is an exception


@pytest.fixture
def api(namespace: Namespace, runtime: Any, tmp_path: Path) -> Iterator[ApiProcess]:
    """``compute-actions api`` with API_PROCESSES gunicorn workers; the fleet is seeded by ``runtime``."""
    port = free_port()
    log_path = tmp_path / "api.log"
    env = namespace.worker_env()
    cmd = [sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{port}",
           "--workers", str(API_PROCESSES)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = ApiProcess(port, proc, log_path)

    def serving() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited with {proc.returncode}:\n{server.log()}")
        with contextlib.suppress(OSError):
            return server.call("GET", "/flavors").status == 200
        return False

    try:
        wait_for(serving, 90, message=lambda: f"the API on port {port}; log:\n{server.log()}", interval=0.2)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
