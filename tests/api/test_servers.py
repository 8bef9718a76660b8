"""Servers: list, list with details and filters, show per microversion (create and delete have their own files)."""
from __future__ import annotations

import hashlib

import pytest

from compute.context import RequestContext
from tests.api.conftest import (
    ADMIN,
    HOST,
    IMAGE_ID,
    OTHER,
    OWNER,
    UNKNOWN_ID,
    activate,
    fault,
    mv,
    set_fields,
)


def show(client, server_id, version="2.1", headers=ADMIN):
    response = client.get(f"/v2.1/servers/{server_id}", headers={**headers, **mv(version)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["server"]


# ---- list --------------------------------------------------------------------------------

@pytest.fixture
def fleet_of_servers(make_server, store):
    mine = make_server("web-1")
    activate(store, mine.id)
    make_server("web-2")
    make_server("db-1")
    theirs = make_server("web-3", ctx=RequestContext("bob", "other", ["member", "reader"]))
    return mine, theirs


def names(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [s["name"] for s in response.get_json()["servers"]]


def test_list__own_project_newest_first_with_id_name_links(client, fleet_of_servers):
    response = client.get("/v2.1/servers", headers=OWNER)
    assert names(response) == ["db-1", "web-2", "web-1"]
    assert all(set(s) == {"id", "name", "links"} for s in response.get_json()["servers"])


def test_list__name_is_a_regex_and_unknown_filters_are_ignored(client, fleet_of_servers):
    assert names(client.get("/v2.1/servers/detail?name=^web&deleted=False&bogus=1", headers=OWNER)) == [
        "web-2", "web-1"]
    assert names(client.get("/v2.1/servers/detail?name=[", headers=OWNER)) == []


def test_list__status_filter(client, fleet_of_servers):
    assert names(client.get("/v2.1/servers/detail?status=ACTIVE", headers=OWNER)) == ["web-1"]
    assert names(client.get("/v2.1/servers?status=build", headers=OWNER)) == ["db-1", "web-2"]


def test_list__all_tenants_for_admin(client, fleet_of_servers):
    assert names(client.get("/v2.1/servers", headers=ADMIN)) == []
    assert names(client.get("/v2.1/servers/detail?all_tenants=1", headers=ADMIN)) == [
        "web-3", "db-1", "web-2", "web-1"]
    assert names(client.get("/v2.1/servers?all_tenants&project_id=other", headers=ADMIN)) == ["web-3"]
    assert names(client.get(f"/v2.1/servers?all_tenants=true&host={HOST}", headers=ADMIN)) == ["web-1"]


def test_list__by_host_pages_the_hosts_servers_as_the_all_projects_list_does(client, store, make_server):
    made = [make_server(f"vm-{index}") for index in range(5)]
    theirs = make_server("vm-theirs", ctx=RequestContext("bob", "other", ["member", "reader"]))
    for inst in (made[0], made[2], made[3], theirs):
        activate(store, inst.id)
    for inst in (made[1], made[4]):
        set_fields(store, inst.id, host="elsewhere", node="elsewhere")
    set_fields(store, made[3].id, deleted=True)
    on_host = f"/v2.1/servers/detail?all_tenants=1&host={HOST}"
    assert names(client.get(on_host, headers=ADMIN)) == ["vm-theirs", "vm-2", "vm-0"]
    assert names(client.get(f"{on_host}&project_id=demo&name=^vm-0", headers=ADMIN)) == ["vm-0"]
    assert names(client.get(f"{on_host}&deleted=true", headers=ADMIN)) == ["vm-3"]
    first = client.get(f"{on_host}&limit=2", headers=ADMIN).get_json()
    assert [s["name"] for s in first["servers"]] == ["vm-theirs", "vm-2"]
    assert names(client.get(f"{on_host}&limit=2&marker={first['servers'][-1]['id']}", headers=ADMIN)) == ["vm-0"]
    # a marker on another host pages below it, as the all-projects list would
    assert names(client.get(f"{on_host}&marker={made[1].id}", headers=ADMIN)) == ["vm-0"]
    assert client.get(f"{on_host}&marker={UNKNOWN_ID}", headers=ADMIN).status_code == 400


def test_list__all_tenants_with_a_bad_value_is_400(client):
    assert client.get("/v2.1/servers?all_tenants=maybe", headers=ADMIN).status_code == 400


def test_list__other_project_sees_only_its_own(client, fleet_of_servers):
    assert names(client.get("/v2.1/servers/detail", headers=OTHER)) == ["web-3"]


def test_list__limit_marker_and_next_link(client, fleet_of_servers):
    body = client.get("/v2.1/servers?limit=2", headers=OWNER).get_json()
    assert [s["name"] for s in body["servers"]] == ["db-1", "web-2"]
    last_id = body["servers"][-1]["id"]
    assert body["servers_links"] == [{"rel": "next", "href": f"http://localhost/v2.1/servers?limit=2&marker={last_id}"}]
    assert names(client.get(f"/v2.1/servers?limit=2&marker={last_id}", headers=OWNER)) == ["web-1"]
    assert client.get(f"/v2.1/servers?marker={UNKNOWN_ID}", headers=OWNER).status_code == 400
    assert client.get("/v2.1/servers?limit=x", headers=OWNER).status_code == 400


def test_list__detail_items_are_full_views(client, fleet_of_servers):
    servers = client.get("/v2.1/servers/detail", headers=OWNER).get_json()["servers"]
    assert all("status" in s and "flavor" in s for s in servers)


# ---- show --------------------------------------------------------------------------------

def test_show__active_server_fields_at_21(client, active_server):
    server = show(client, active_server.id, headers=OWNER)
    assert server["id"] == active_server.id
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["tenant_id"] == "demo" and server["user_id"] == "alice"
    assert server["hostId"] == hashlib.sha224(("demo" + HOST).encode()).hexdigest()
    assert server["image"] == {"id": IMAGE_ID, "links": [{"rel": "bookmark",
                                                          "href": f"http://localhost/images/{IMAGE_ID}"}]}
    assert server["flavor"] == {"id": "1", "links": [{"rel": "bookmark", "href": "http://localhost/flavors/1"}]}
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["addresses"] == {} and server["accessIPv4"] == "" and server["accessIPv6"] == ""
    assert server["metadata"] == {} and server["key_name"] is None and server["config_drive"] == ""
    assert server["progress"] == 0
    assert server["created"].endswith("Z")
    assert "fault" not in server
    for absent in ("locked", "locked_reason", "OS-EXT-SRV-ATTR:host", "description", "tags"):
        assert absent not in server


def test_show__extended_attributes_only_for_admin(client, active_server):
    admin = show(client, active_server.id)
    assert admin["OS-EXT-SRV-ATTR:host"] == HOST
    assert admin["OS-EXT-SRV-ATTR:hypervisor_hostname"] == HOST
    assert admin["OS-EXT-SRV-ATTR:instance_name"].startswith("instance-")
    assert "OS-EXT-SRV-ATTR:reservation_id" not in admin
    assert "OS-EXT-SRV-ATTR:reservation_id" in show(client, active_server.id, "2.3")
    owner = show(client, active_server.id, "2.3", OWNER)
    assert not [k for k in owner if k.startswith("OS-EXT-SRV-ATTR:")]


def test_show__flavor_is_embedded_from_247(client, active_server):
    assert show(client, active_server.id, "2.46")["flavor"]["id"] == "1"
    assert show(client, active_server.id, "2.47")["flavor"] == {
        "vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0, "original_name": "m1.tiny", "extra_specs": {}}


def test_show__locked_from_29_and_locked_reason_from_273(client, store, active_server):
    set_fields(store, active_server.id, locked=True, locked_reason="maintenance")
    assert "locked" not in show(client, active_server.id, "2.8")
    at_29 = show(client, active_server.id, "2.9")
    assert at_29["locked"] is True and "locked_reason" not in at_29
    assert show(client, active_server.id, "2.73")["locked_reason"] == "maintenance"


def test_show__host_status_for_admin_from_216(client, fleet, active_server):
    assert "host_status" not in show(client, active_server.id, "2.15")
    assert show(client, active_server.id, "2.16")["host_status"] == "UP"
    fleet.set_host_state(HOST, enabled=False, disabled_reason="upgrade")
    assert show(client, active_server.id, "2.16")["host_status"] == "MAINTENANCE"
    assert "host_status" not in show(client, active_server.id, "2.16", OWNER)


def test_show__building_server_has_no_host_and_empty_host_id(client, build_server):
    server = show(client, build_server.id)
    assert server["status"] == "BUILD"
    assert server["OS-EXT-STS:task_state"] == "scheduling"
    assert server["hostId"] == ""
    assert server["OS-EXT-SRV-ATTR:host"] is None
    assert server["progress"] == 0


def test_show__fault_only_in_error_and_details_only_for_admin_on_500(client, store, active_server):
    fault_record = {"code": 500, "created": "2030-01-01T00:00:00.000000", "message": "NoValidHost",
                    "details": "Traceback"}
    set_fields(store, active_server.id, fault=fault_record)
    assert "fault" not in show(client, active_server.id)
    set_fields(store, active_server.id, vm_state="error")
    server = show(client, active_server.id)
    assert server["status"] == "ERROR"
    assert "progress" not in server
    assert server["fault"] == {"code": 500, "created": "2030-01-01T00:00:00Z", "message": "NoValidHost",
                               "details": "Traceback"}
    assert "details" not in show(client, active_server.id, headers=OWNER)["fault"]


def test_show__migrating_status_and_progress(client, store, active_server):
    set_fields(store, active_server.id, task_state="migrating", progress=40)
    server = show(client, active_server.id)
    assert (server["status"], server["progress"]) == ("MIGRATING", 40)


@pytest.mark.parametrize("server_id", [UNKNOWN_ID, "abc", "1", UNKNOWN_ID.upper()])
def test_show__unknown_server_is_404(client, server_id):
    response = client.get(f"/v2.1/servers/{server_id}", headers=ADMIN)
    assert fault(response) == ("itemNotFound", 404, f"Instance {server_id} could not be found.")


def test_show__other_project_is_404(client, active_server):
    assert client.get(f"/v2.1/servers/{active_server.id}", headers=OTHER).status_code == 404


def test_show__uppercase_uuid_finds_the_server(client, active_server):
    assert client.get(f"/v2.1/servers/{active_server.id.upper()}", headers=ADMIN).status_code == 200


@pytest.mark.parametrize("version", ["2.1", "2.47", "2.63", "2.73", "2.90", "2.96", "2.100", "2.104"])
def test_show__every_microversion_renders(client, active_server, version):
    server = show(client, active_server.id, version)
    assert server["status"] == "ACTIVE"
