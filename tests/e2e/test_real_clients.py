"""The real OpenStack clients, unmodified, against a running `compute-actions dev`."""
from __future__ import annotations

import json

import openstack
import pytest
from keystoneauth1 import session, token_endpoint
from novaclient import api_versions
from novaclient import client as nova_client

from tests.e2e.conftest import DevServer
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def sdk(dev_server: DevServer) -> openstack.connection.Connection:
    return openstack.connect(auth_type="admin_token", auth={"endpoint": dev_server.endpoint, "token": "admin:admin"})


def nova(dev_server: DevServer, version: str | None = None):  # noqa: ANN201
    sess = session.Session(auth=token_endpoint.Token(dev_server.endpoint, "admin:admin"))
    if version is None:
        found = api_versions.discover_version(nova_client.Client("2.1", session=sess),
                                              api_versions.APIVersion("2.latest"))
        version = found.get_string()
    return nova_client.Client(version, session=sess)


def test_openstacksdk__create_show_list_reset_state_and_events(dev_server: DevServer) -> None:
    conn = sdk(dev_server)
    server = conn.compute.create_server(name="sdk-vm", image_id=IMAGE_ID, flavor_id="1", networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=90, interval=0.5)
    assert server.compute_host and server.vm_state == "active"
    assert server.id in [s.id for s in conn.compute.servers()]
    conn.compute.reset_server_state(server, "error")
    assert conn.compute.get_server(server.id).status == "ERROR"
    actions = list(conn.compute.server_actions(server.id))
    assert [a.action for a in actions][:2] == ["resetState", "create"]
    create = conn.compute.get_server_action(actions[1].request_id, server.id)
    assert [e["event"] for e in create.events] == ["compute__do_build_and_run_instance"]


def test_novaclient__fixed_and_negotiated_versions(dev_server: DevServer) -> None:
    for version in ("2.1", None):
        client = nova(dev_server, version)
        nics = "none" if client.api_version >= api_versions.APIVersion("2.37") else []
        created = client.servers.create("nova-vm", IMAGE_ID, "1", nics=nics)
        wait_for(lambda: client.servers.get(created.id).status == "ACTIVE", 90, "server ACTIVE")
        assert created.id in [s.id for s in client.servers.list()]
        result = client.servers.reset_state(created.id, "error")
        assert client.servers.get(created.id).status == "ERROR"
        request_id = result.request_ids[0]
        listed = client.instance_action.list(created.id)
        assert listed[0].request_id == request_id and listed[0].action == "resetState"
        shown = client.instance_action.get(created.id, request_id)
        assert shown.action == "resetState"


def test_openstack_cli__server_lifecycle_and_events(dev_server: DevServer) -> None:
    created = dev_server.openstack("server", "create", "--image", IMAGE_ID, "--flavor", "1", "--nic", "none",
                                   "--wait", "-f", "json", "cli-vm")
    assert created.returncode == 0, created.stderr
    server = json.loads(created.stdout)
    assert server["status"] == "ACTIVE"
    shown = dev_server.openstack("server", "show", server["id"], "-f", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["OS-EXT-STS:vm_state"] == "active"
    listed = dev_server.openstack("server", "list", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert server["id"] in [s["ID"] for s in json.loads(listed.stdout)]
    reset = dev_server.openstack("server", "set", "--auto-approve", "--state", "error", server["id"])
    assert reset.returncode == 0, reset.stderr
    events = dev_server.openstack("server", "event", "list", server["id"], "-f", "json")
    assert events.returncode == 0, events.stderr
    rows = json.loads(events.stdout)
    assert [r["Action"] for r in rows][:2] == ["resetState", "create"]
    event = dev_server.openstack("server", "event", "show", server["id"], rows[1]["Request ID"], "-f", "json")
    assert event.returncode == 0, event.stderr
    assert json.loads(event.stdout)["action"] == "create"
