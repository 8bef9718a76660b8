"""The power and lock actions through the real clients, against `compute-actions dev`.

`openstack server stop/start/pause/unpause/suspend/resume/lock/unlock`, each followed by
the status the CLI (or the SDK's wait) reads; the lock seen with `server show -c locked`;
a member refused on a server an admin locked (the SDK's ConflictException and
ForbiddenException); the actions listed by `openstack server event list`.
"""
from __future__ import annotations

import json
from typing import Any

import openstack
import pytest
from openstack import exceptions
from openstack.compute.v2.server import Server

from tests.e2e.conftest import DevServer
from tests.e2e.test_real_clients import sdk
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def osc(dev: DevServer, *args: str) -> Any:
    done = dev.openstack(*args)
    assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout) if "json" in args else done.stdout


def shown(dev: DevServer, server_id: str, *columns: str) -> dict[str, Any]:
    args = [arg for column in columns for arg in ("-c", column)]
    return osc(dev, "server", "show", "-f", "json", *args, server_id)


def wait_status(dev: DevServer, server_id: str, status: str) -> None:
    """Until the CLI shows ``status`` with no task running (as `openstack server ... --wait` would)."""
    wait_for(lambda: shown(dev, server_id, "status", "OS-EXT-STS:task_state") == {
        "status": status, "OS-EXT-STS:task_state": None}, 90, f"server {server_id} to be {status}")


def active_server(conn: openstack.connection.Connection, name: str) -> Server:
    server = conn.compute.create_server(name=name, image_id=IMAGE_ID, flavor_id="1", networks="none")
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=90, interval=0.5)


def member(dev: DevServer) -> openstack.connection.Connection:
    return openstack.connect(auth_type="admin_token", auth={"endpoint": dev.endpoint, "token": "demo:demo"})


def test_openstack_cli__stop_start_pause_unpause_suspend_resume(dev_server: DevServer) -> None:
    server = active_server(sdk(dev_server), "cli-power")
    for command, status in [("stop", "SHUTOFF"), ("start", "ACTIVE"), ("pause", "PAUSED"), ("unpause", "ACTIVE"),
                            ("suspend", "SUSPENDED"), ("resume", "ACTIVE")]:
        osc(dev_server, "server", command, server.id)
        wait_status(dev_server, server.id, status)
    events = osc(dev_server, "server", "event", "list", "-f", "json", server.id)
    assert [e["Action"] for e in events][:6] == ["resume", "suspend", "unpause", "pause", "start", "stop"]


def test_openstack_cli__lock_with_a_reason_and_unlock(dev_server: DevServer) -> None:
    server = active_server(sdk(dev_server), "cli-lock")
    assert shown(dev_server, server.id, "locked") == {"locked": False}
    osc(dev_server, "--os-compute-api-version", "2.73", "server", "lock", "--reason", "maintenance", server.id)
    locked = osc(dev_server, "--os-compute-api-version", "2.73", "server", "show", "-f", "json",
                 "-c", "locked", "-c", "locked_reason", server.id)
    assert locked == {"locked": True, "locked_reason": "maintenance"}
    osc(dev_server, "server", "unlock", server.id)
    assert shown(dev_server, server.id, "locked") == {"locked": False}
    events = osc(dev_server, "server", "event", "list", "-f", "json", server.id)
    assert [e["Action"] for e in events][:2] == ["unlock", "lock"]


def test_sdk__a_member_is_stopped_by_an_admins_lock(dev_server: DevServer) -> None:
    demo = member(dev_server)
    server = active_server(demo, "member-power")
    admin = sdk(dev_server)
    admin.compute.lock_server(server)
    with pytest.raises(exceptions.ConflictException, match=f"Instance {server.id} is locked"):
        demo.compute.stop_server(server)
    with pytest.raises(exceptions.ForbiddenException, match="unlock_override"):
        demo.compute.unlock_server(server)
    admin.compute.unlock_server(server)
    demo.compute.stop_server(server)
    demo.compute.wait_for_server(server, status="SHUTOFF", wait=90, interval=0.5)
    with pytest.raises(exceptions.ConflictException, match="while it is in vm_state stopped"):
        demo.compute.pause_server(server)
