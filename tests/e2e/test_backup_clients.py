"""createBackup through the real clients: the SDK at 2.45 (body) and 2.1 (Location), novaclient, the CLI."""
from __future__ import annotations

import json

import openstack
import pytest
from keystoneauth1 import session, token_endpoint
from openstack.compute.v2.server import Server

from tests.e2e.conftest import DevServer
from tests.e2e.test_real_clients import nova, sdk
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def active_server(conn: openstack.connection.Connection, name: str) -> Server:
    server = conn.compute.create_server(name=name, image_id=IMAGE_ID, flavor_id="1", networks="none")
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=90, interval=0.5)


def backups_named(conn: openstack.connection.Connection, server_id: str) -> list[str]:
    return sorted(i.name for i in conn.compute.images(server=server_id, type="backup"))


def wait_idle(conn: openstack.connection.Connection, server_id: str) -> None:
    wait_for(lambda: conn.compute.get_server(server_id).task_state is None, 90, "backup to finish")


def test_sdk__backup_at_2_45_and_at_2_1(dev_server: DevServer) -> None:
    conn = sdk(dev_server)
    server = active_server(conn, "sdk-backup")
    server.backup(conn.compute, "b-245", "daily", 2)
    wait_idle(conn, server.id)
    sess = session.Session(auth=token_endpoint.Token(dev_server.endpoint, "admin:admin"))
    conn21 = openstack.connection.Connection(session=sess, compute_api_version="2.1")
    old = conn21.compute.get_server(server.id)
    old.backup(conn21.compute, "b-21", "daily", 2)
    wait_idle(conn, server.id)
    assert backups_named(conn, server.id) == ["b-21", "b-245"]


def test_novaclient__backup_with_rotation(dev_server: DevServer) -> None:
    client = nova(dev_server)
    conn = sdk(dev_server)
    server = active_server(conn, "nova-backup")
    for name in ("n1", "n2", "n3"):
        client.servers.backup(server.id, name, "daily", 2)
        wait_idle(conn, server.id)
    assert backups_named(conn, server.id) == ["n2", "n3"]


def test_openstack_cli__server_backup_create_rotates(dev_server: DevServer) -> None:
    conn = sdk(dev_server)
    server = active_server(conn, "cli-backup")
    for name in ("c1", "c2", "c3"):
        created = dev_server.openstack("server", "backup", "create", "--name", name, "--type", "daily",
                                       "--rotate", "2", "-f", "json", server.id)
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["name"] == name
        wait_idle(conn, server.id)
    assert backups_named(conn, server.id) == ["c2", "c3"]
