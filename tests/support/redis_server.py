"""A redis-server of the test's own, for the tests that kill, freeze or restart their store.

The shared Redis on 127.0.0.1:6379 must never be touched that way; these servers live in the
test's temporary directory on a port of their own and are SIGKILLed when the test ends.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.wait import wait_for

START_TIMEOUT = 20.0
PORTS = range(6390, 6490)


def free_port() -> int:
    """A port in PORTS that nothing answers on and that binds (not an ephemeral one a client may hold)."""
    for port in PORTS:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class RedisServer:
    """redis-server keeping its data in ``directory`` (AOF when ``durable``).

    ``kill`` is SIGKILL; ``start`` again reuses port and directory, so a durable server comes
    back with what it had; ``pause``/``resume`` freeze it (SIGSTOP/SIGCONT), an unanswering store.
    """

    port: int
    directory: Path
    durable: bool = True
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def ping(self) -> bool:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        self.starts += 1
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.durable else ["--appendonly", "no"]
        log = open(self.directory / f"redis-{self.starts}.log", "wb")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             *persistence, "--save", "", "--daemonize", "no", "--databases", "16"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}: {self.log()}")
            return self.ping()

        wait_for(up, START_TIMEOUT, f"redis-server on port {self.port} to answer PING", interval=0.05)

    def kill(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.kill()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.directory.glob("redis-*.log")))


@contextlib.contextmanager
def redis_server(tmp_path: Path, *, durable: bool = True) -> Iterator[RedisServer]:
    """A running private redis-server (its files in ``tmp_path/redis``), SIGKILLed at the end.

    Without the redis-server binary the test skips, and fails in CI (CI=true).
    """
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is required in CI")
        pytest.skip("no redis-server binary")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(free_port(), directory, durable=durable)
    server.start()
    try:
        yield server
    finally:
        server.stop()
