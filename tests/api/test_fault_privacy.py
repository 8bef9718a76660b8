"""A member's failed create shows Nova's "No valid host was found..." and nothing about other hosts.

The scheduler explains every rejected host (their names, why, how full): admins read that in
the action's event details; the server's fault shows its owner only the Nova message.
"""
from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from compute.store import Store
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine

ADMIN = {"X-Auth-Token": "admin:admin"}
MEMBER = {"X-Auth-Token": "alice:demo"}
NOVA_MESSAGE = "No valid host was found. There are not enough hosts available."


@pytest.fixture
def failed_create(engine: Engine, engine_client: FlaskClient, store: Store) -> tuple[str, str, list[str]]:
    """A member's create that no host can take: every host disabled for a named reason."""
    hosts = [h.name for h in store.list_hosts()]
    for name in hosts:
        store.update_host(name, enabled=False, disabled_reason="rack-7 maintenance")
    response = engine_client.post("/v2.1/servers", headers=MEMBER, json={
        "server": {"name": "doomed", "flavorRef": "1", "imageRef": IMAGE_ID}})
    assert response.status_code == 202, response.get_data(as_text=True)
    engine.drain()
    return response.get_json()["server"]["id"], response.headers["x-openstack-request-id"], hosts


def leaks(text: str, hosts: list[str]) -> list[str]:
    return [word for word in (*hosts, "rack-7", "ComputeFilter", "Rejected") if word in text]


@pytest.mark.parametrize("version", ["2.1", "2.84", "2.104"])
def test_member__sees_only_novas_message_in_the_fault(engine_client: FlaskClient, failed_create: Any,
                                                      version: str) -> None:
    server_id, _, hosts = failed_create
    headers = {**MEMBER, "OpenStack-API-Version": f"compute {version}"}
    server = engine_client.get(f"/v2.1/servers/{server_id}", headers=headers).get_json()["server"]
    assert server["status"] == "ERROR"
    assert server["fault"]["message"] == NOVA_MESSAGE
    listed = engine_client.get("/v2.1/servers/detail", headers=headers).get_data(as_text=True)
    assert leaks(json.dumps(server), hosts) == [] and leaks(listed, hosts) == []


def test_member__instance_action_events_keep_the_explanation_from_them(engine_client: FlaskClient,
                                                                      failed_create: Any) -> None:
    server_id, request_id, hosts = failed_create
    path = f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}"
    member = engine_client.get(path, headers={**MEMBER, "OpenStack-API-Version": "compute 2.84"})
    assert member.status_code == 200
    assert leaks(member.get_data(as_text=True), hosts) == []


def test_admin__reads_the_per_host_explanation_in_the_event_details(engine_client: FlaskClient,
                                                                   failed_create: Any) -> None:
    server_id, request_id, hosts = failed_create
    path = f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}"
    action = engine_client.get(path, headers={**ADMIN, "OpenStack-API-Version": "compute 2.84"}).get_json()
    details = " ".join(e.get("details") or "" for e in action["instanceAction"]["events"])
    assert details.startswith(NOVA_MESSAGE)
    assert all(host in details for host in hosts) and "rack-7 maintenance" in details
