"""Host maintenance end to end with the real CLIs, on the shipped sample fleet:

  openstack compute service set --disable --disable-reason maintenance <host> nova-compute
  nova host-evacuate-live <host>                 (every server live-migrated, the scheduler choosing)
  wait: each server ACTIVE elsewhere, its migration completed, the host's running_vms 0
  openstack compute service set --enable <host> nova-compute
  a new server lands there again

The nova CLI is given only documented OS_* variables (the README's "Trying it" lists them). Its
own `compute-actions dev`: the test disables a host.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DevServer, running_dev_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

HOST = "compute-kvm-3"  # where servers booted with no zone land (the most free RAM)
SERVERS = 3


@pytest.fixture(scope="module")
def maintenance_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("maintenance-dev")) as server:
        yield server


def nova_cli(dev: DevServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The nova CLI with the README's OS_* variables and nothing else of the caller's OS_* environment."""
    exe = shutil.which("nova", path=str(Path(sys.executable).parent)) or shutil.which("nova")
    assert exe, "the nova CLI comes with python-novaclient"
    base = dev.endpoint.rsplit("/v2.1", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_TYPE="token", OS_AUTH_URL=f"{base}/identity/v3", OS_TOKEN="admin:admin",
               OS_PROJECT_NAME="admin")
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


def server(dev: DevServer, server_id: str) -> dict[str, Any]:
    return dev.osc("server", "show", server_id, "-f", "json")


def running_vms(dev: DevServer, host: str) -> int:
    """``openstack hypervisor show``; running_vms is in the API up to 2.87 (Nova dropped it in 2.88)."""
    return dev.osc("--os-compute-api-version", "2.87", "hypervisor", "show", host, "-f", "json")["running_vms"]


def service_of(dev: DevServer, host: str) -> dict[str, Any]:
    [found] = dev.osc("compute", "service", "list", "--host", host, "--service", "nova-compute", "--long",
                  "-f", "json")
    return found


def test_drain_a_host_for_maintenance_and_bring_it_back(maintenance_dev: DevServer) -> None:
    drain_a_host_and_bring_it_back(maintenance_dev)


def drain_a_host_and_bring_it_back(dev: DevServer, timeout: float = 120) -> None:
    """The operator's day of issue 10, on any deployment the CLIs can reach (dev or production shape)."""
    ids = [dev.boot(f"maint-{n}")["id"] for n in range(SERVERS)]
    assert {server(dev, i)["OS-EXT-SRV-ATTR:host"] for i in ids} == {HOST}
    assert running_vms(dev, HOST) == SERVERS

    # 1. Take the host out of scheduling, with the reason operators read.
    dev.osc("compute", "service", "set", "--disable", "--disable-reason", "maintenance", HOST, "nova-compute")
    found = service_of(dev, HOST)
    assert (found["Status"], found["Disabled Reason"]) == ("disabled", "maintenance")

    # 2. Drain it: novaclient lists the host's servers (os-hypervisors search) and live-migrates each.
    drained = nova_cli(dev, "host-evacuate-live", HOST)
    assert drained.returncode == 0, drained.stdout + drained.stderr
    for server_id in ids:
        assert server_id in drained.stdout
    assert "False" not in drained.stdout and "Error while live migrating" not in drained.stdout

    # 3. Every server ACTIVE on another host, its live migration completed; nothing left on the host.
    def moved(server_id: str) -> dict[str, Any] | None:
        shown = server(dev, server_id)
        assert shown["status"] != "ERROR", shown
        return shown if shown["status"] == "ACTIVE" and shown["OS-EXT-SRV-ATTR:host"] != HOST else None

    for server_id in ids:
        shown = wait_for(lambda server_id=server_id: moved(server_id), timeout, f"{server_id} to leave {HOST}",
                         interval=0.5)
        assert shown["OS-EXT-SRV-ATTR:host"]
        [migration] = dev.osc("server", "migration", "list", "--server", server_id, "-f", "json")
        assert (migration["Type"], migration["Status"], migration["Source Compute"]) == (
            "live-migration", "completed", HOST)
        assert migration["Dest Compute"] == shown["OS-EXT-SRV-ATTR:host"]
    assert running_vms(dev, HOST) == 0

    # While disabled, a new server goes elsewhere.
    assert dev.boot("maint-while-disabled")["OS-EXT-SRV-ATTR:host"] != HOST

    # 4. Back in service: the host takes new servers again.
    dev.osc("compute", "service", "set", "--enable", HOST, "nova-compute")
    assert service_of(dev, HOST)["Status"] == "enabled"
    again = dev.boot("maint-after")  # no zone: the emptied host has the most free RAM again
    assert (again["status"], again["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", HOST)
    pinned = dev.boot("maint-pinned", "--availability-zone", f"nova:{HOST}")
    assert (pinned["status"], pinned["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", HOST)
    assert running_vms(dev, HOST) == 2
