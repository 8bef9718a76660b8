"""Cold migration through the real clients: migrate, confirm, revert, with and without a host."""
from __future__ import annotations

import json

import pytest
from openstack.compute.v2.server import Server

from tests.e2e.conftest import DevServer
from tests.e2e.test_backup_clients import active_server
from tests.e2e.test_real_clients import nova, sdk

pytestmark = pytest.mark.e2e


def other_xen(host: str | None) -> str:
    return "compute-xen-2" if host != "compute-xen-2" else "compute-xen-1"


def wait_status(conn, server: Server, status: str) -> Server:  # noqa: ANN001
    return conn.compute.wait_for_server(server, status=status, wait=90, interval=0.3)


def test_novaclient__migrate_confirm_then_migrate_to_a_host_and_revert(dev_server: DevServer) -> None:
    conn = sdk(dev_server)
    client = nova(dev_server, "2.56")
    server = active_server(conn, "nova-migrate")
    source = server.compute_host
    client.servers.migrate(server.id)
    server = wait_status(conn, server, "VERIFY_RESIZE")
    assert server.compute_host != source
    client.servers.confirm_resize(server.id)
    server = wait_status(conn, server, "ACTIVE")
    placed = server.compute_host
    client.servers.migrate(server.id, host=other_xen(placed))
    server = wait_status(conn, server, "VERIFY_RESIZE")
    assert server.compute_host == other_xen(placed)
    client.servers.revert_resize(server.id)
    server = wait_status(conn, server, "ACTIVE")
    assert server.compute_host == placed
    actions = [a.action for a in client.instance_action.list(server.id)]
    assert actions == ["revertResize", "migrate", "confirmResize", "migrate", "create"]


def test_openstack_cli__migrate_and_confirm_and_revert(dev_server: DevServer) -> None:
    conn = sdk(dev_server)
    server = active_server(conn, "cli-migrate")
    source = server.compute_host
    migrated = dev_server.openstack("server", "migrate", server.id)
    assert migrated.returncode == 0, migrated.stderr
    server = wait_status(conn, server, "VERIFY_RESIZE")
    confirmed = dev_server.openstack("server", "migration", "confirm", server.id)
    assert confirmed.returncode == 0, confirmed.stderr
    server = wait_status(conn, server, "ACTIVE")
    assert server.compute_host != source
    placed = server.compute_host
    target = other_xen(placed)
    migrated = dev_server.openstack("--os-compute-api-version", "2.56", "server", "migrate", "--host", target,
                                    server.id)
    assert migrated.returncode == 0, migrated.stderr
    server = wait_status(conn, server, "VERIFY_RESIZE")
    reverted = dev_server.openstack("server", "resize", "revert", server.id)
    assert reverted.returncode == 0, reverted.stderr
    server = wait_status(conn, server, "ACTIVE")
    assert server.compute_host == placed
    listed = dev_server.openstack("server", "migration", "list", "--server", server.id, "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert {row["Status"] for row in json.loads(listed.stdout)} == {"confirmed", "reverted"}
