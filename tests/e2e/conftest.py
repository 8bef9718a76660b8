"""A running `compute-actions dev` (one process, embedded store and broker) for the real clients."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DevServer:
    endpoint: str
    log: Path
    clouds_yaml: Path

    def openstack(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the real `openstack` CLI against the server, through a clouds.yaml entry."""
        exe = shutil.which("openstack", path=str(Path(sys.executable).parent)) or shutil.which("openstack")
        assert exe, "the openstack CLI is a test dependency (python-openstackclient)"
        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml))
        return subprocess.run([exe, "--os-cloud", "compute-actions", *args], capture_output=True, text=True,
                              env=env, timeout=timeout, stdin=subprocess.DEVNULL)

    def osc(self, *args: str) -> Any:
        """Run the CLI, assert it succeeded, and return its JSON output (its text when not asked for JSON)."""
        done = self.openstack(*args)
        assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stdout}{done.stderr}"
        return json.loads(done.stdout) if "json" in args else done.stdout

    def boot(self, name: str, *extra: str, flavor: str = "m1.tiny") -> dict[str, Any]:
        """``openstack server create --wait`` with no network, as every client test boots."""
        return self.osc("server", "create", "--image", IMAGE_ID, "--flavor", flavor, "--nic", "none", "--wait",
                        *extra, "-f", "json", name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_dev_server(workdir: Path, **env_overrides: str) -> Iterator[DevServer]:
    """Start `compute-actions dev` on a free port with these settings; stop it afterwards."""
    port = free_port()
    log = workdir / "dev.log"
    clouds = workdir / "clouds.yaml"
    # One server serves a whole session of client tests, more servers than Nova's default quota.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COMPUTE_ACTIONS_FLEET__DURATION_SCALE": "0.2",
           "COMPUTE_ACTIONS_ENGINE__POLL_INTERVAL_SECONDS": "0.2", "COMPUTE_ACTIONS_QUOTA__INSTANCES": "-1",
           "COMPUTE_ACTIONS_QUOTA__CORES": "-1", "COMPUTE_ACTIONS_QUOTA__RAM": "-1", **env_overrides}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "dev", "--port", str(port),
                                 "--clouds-yaml", str(clouds)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}/v2.1"

    def answering() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"compute-actions dev exited:\n{log.read_text()}")
        try:
            return requests.get(endpoint + "/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(answering, 90, "compute-actions dev to answer")
        banner = log.read_text()
        assert "NOT DURABLE" in banner and endpoint in banner and "admin:admin" in banner
        yield DevServer(endpoint=endpoint, log=log, clouds_yaml=clouds)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("dev")) as server:
        yield server


@pytest.fixture(scope="session")
def slow_migration_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A fleet whose live migrations copy slowly (300 s per GiB), so they can be aborted or forced."""
    workdir = tmp_path_factory.mktemp("slow-dev")
    fleet = yaml.safe_load((ROOT / "config" / "fleet.yaml").read_text())
    fleet["durations"]["live_migration_per_gb"] = 300.0
    fleet_file = workdir / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(fleet))
    with running_dev_server(workdir, COMPUTE_ACTIONS_FLEET__FLEET_FILE=str(fleet_file)) as server:
        yield server
