"""Two ``compute-actions api`` instances on one machine, same user and HOME: gunicorn's control
socket is each instance's own (gunicorn 25.1+ would otherwise give both ``$HOME/.gunicorn/gunicorn.ctl``).

``gunicornc`` on each instance's socket answers for that instance's arbiter, and the socket's
folder is gone once the instance has stopped.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import free_port
from tests.integration.conftest import Namespace
from tests.support.wait import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.integration]

ANNOUNCED = re.compile(r"gunicorn control socket: (\S+)")


def gunicornc(socket_path: str, command: str) -> dict:
    exe = shutil.which("gunicornc", path=str(Path(sys.executable).parent))
    assert exe, "gunicornc comes with gunicorn >= 25.1"
    done = subprocess.run([exe, "-s", socket_path, "-c", command, "-j"], capture_output=True, text=True, timeout=20,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_api_instance_has_its_own_control_socket(namespace: Namespace, tmp_path: Path) -> None:
    env = namespace.worker_env()
    env.pop("XDG_RUNTIME_DIR", None)
    env["HOME"] = str(tmp_path / "home")  # one HOME for both, as two instances run by one user
    started = []
    try:
        for workers in (1, 2):
            port, log = free_port(), tmp_path / f"api-{workers}.log"
            proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{port}",
                                     "--workers", str(workers)], env=env, stdout=log.open("wb"),
                                    stderr=subprocess.STDOUT, start_new_session=True)
            started.append((proc, port, log, workers))

        sockets = []
        for proc, port, log, workers in started:
            def answering(proc=proc, port=port, log=log) -> bool:
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                except requests.RequestException:
                    return False

            wait_for(answering, 60, lambda log=log: f"the API to answer: {log.read_text(errors='replace')[-2000:]}")
            found = wait_for(lambda log=log: ANNOUNCED.search(log.read_text(errors="replace")), 30,
                             "the control socket's path in the log")
            path = found.group(1)
            assert Path(path).is_socket() and not path.startswith(env["HOME"])
            assert gunicornc(path, "show stats")["pid"] == proc.pid
            assert gunicornc(path, "show workers")["count"] == workers
            sockets.append(path)
        assert len(set(sockets)) == 2
        assert not (Path(env["HOME"]) / ".gunicorn" / "gunicorn.ctl").exists()
    finally:
        for proc, *_ in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, *_ in started:
            proc.wait(timeout=30)
    for path in sockets:
        assert not Path(path).parent.exists(), f"{path}'s folder was left behind"
