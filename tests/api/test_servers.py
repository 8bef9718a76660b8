"""Servers: create, list, list with details and filters, show per microversion, delete."""
from __future__ import annotations

import hashlib

import pytest

from compute.context import RequestContext
from tests.api.conftest import (
    ADMIN, HOST, IMAGE_ID, OTHER, OWNER, UNKNOWN_ID, activate, fault, mv, set_fields,
)


def create(client, headers=OWNER, **server):
    body = {"server": {"name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1", **server}}
    return client.post("/v2.1/servers", json=body, headers=headers)


def show(client, server_id, version="2.1", headers=ADMIN):
    response = client.get(f"/v2.1/servers/{server_id}", headers={**headers, **mv(version)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["server"]


# ---- create ------------------------------------------------------------------------------

def test_create__202_with_novas_minimal_body_and_location(client, store):
    response = create(client, networks="none", min_count=1, max_count=1)
    assert response.status_code == 202
    server = response.get_json()["server"]
    assert set(server) == {"id", "links", "OS-DCF:diskConfig", "security_groups", "adminPass"}
    assert server["OS-DCF:diskConfig"] == "MANUAL"
    assert server["security_groups"] == [{"name": "default"}]
    assert len(server["adminPass"]) == 12
    assert server["links"][0] == {"rel": "self", "href": f"http://localhost/v2.1/servers/{server['id']}"}
    assert response.headers["Location"] == f"http://localhost/v2.1/servers/{server['id']}"
    instance = store.get_instance(server["id"])
    assert (instance.name, instance.project_id, instance.user_id, instance.image_id, instance.flavor.id) == (
        "vm", "demo", "alice", IMAGE_ID, "1")
    assert instance.vm_state == "building"


@pytest.mark.parametrize("extra", [
    {"networks": "auto"}, {"networks": []}, {"networks": [{"uuid": "net-1"}]},
    {"flavorRef": 1}, {"flavorRef": "http://localhost/flavors/1"}, {"imageRef": ""},
    {"metadata": {"role": "db"}}, {"availability_zone": "nova"}, {"min_count": "1"},
    {"key_name": "k", "security_groups": [{"name": "web"}], "config_drive": True, "description": None},
])
def test_create__accepts_what_clients_send(client, extra):
    assert create(client, **extra).status_code == 202


def test_create__echoes_a_given_admin_pass_and_security_groups(client):
    server = create(client, adminPass="chosen", security_groups=[{"name": "web"}]).get_json()["server"]
    assert server["adminPass"] == "chosen"
    assert server["security_groups"] == [{"name": "web"}]


@pytest.mark.parametrize("body, message", [
    (None, "None is not of type 'object'"),
    ({}, "'server' is a required property"),
    ({"server": {"name": "vm"}}, "Invalid input for field/attribute server. Value: {'name': 'vm'}. "
                                 "'flavorRef' is a required property"),
    ({"server": {"name": "", "flavorRef": "1"}}, "Invalid input for field/attribute name. Value: . '' is too short"),
    ({"server": {"name": " vm", "flavorRef": "1"}},
     "An invalid 'name' value was provided. The name must be: printable characters. "
     "Can not start or end with whitespace."),
    ({"server": {"name": "vm", "flavorRef": "1", "imageRef": "not-a-uuid"}},
     "Invalid input for field/attribute imageRef. Value: not-a-uuid. "
     "'not-a-uuid' is not valid under any of the given schemas"),
    ({"server": {"name": "vm", "flavorRef": "1", "flavor": "x"}},
     "Invalid input for field/attribute server. Value: {'name': 'vm', 'flavorRef': '1', 'flavor': 'x'}. "
     "Additional properties are not allowed ('flavor' was unexpected)"),
    ({"server": {"name": "vm", "flavorRef": "1", "min_count": 0}},
     "Invalid input for field/attribute min_count. Value: 0. 0 is less than the minimum of 1"),
    ({"server": {"name": "vm", "flavorRef": "1", "networks": "some"}},
     "Invalid input for field/attribute networks. Value: some. 'some' is not valid under any of the given schemas"),
    ({"server": {"name": "vm", "flavorRef": "1", "metadata": {"k": 1}}},
     "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"),
])
def test_create__invalid_body_is_400(client, body, message):
    response = client.post("/v2.1/servers", json=body, headers=OWNER)
    assert fault(response) == ("badRequest", 400, message)


@pytest.mark.parametrize("counts", [{"min_count": 2}, {"max_count": 3}, {"min_count": 1, "max_count": "2"}])
def test_create__more_than_one_server_is_400(client, store, counts):
    response = create(client, **counts)
    assert response.status_code == 400
    assert "Only one server per request is supported" in fault(response)[2]
    assert store.list_instances() == []


@pytest.mark.parametrize("server, message", [
    ({"flavorRef": "42"}, "Flavor 42 could not be found."),
    ({"imageRef": UNKNOWN_ID}, "Can not find requested image"),
    ({"availability_zone": "mars"}, "The requested availability zone is not available"),
])
def test_create__unknown_references_are_400(client, server, message):
    assert fault(create(client, **server)) == ("badRequest", 400, message)


def test_create__forced_host_needs_policy(client, store):
    response = create(client, availability_zone=f"nova:{HOST}")
    assert fault(response) == ("forbidden", 403, "Policy doesn't allow os_compute_api:servers:create:forced_host "
                                                 "to be performed.")
    response = create(client, ADMIN, availability_zone=f"nova:{HOST}")
    assert response.status_code == 202
    assert store.get_instance(response.get_json()["server"]["id"]).requested_host == HOST


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


# ---- delete ------------------------------------------------------------------------------

def test_delete__204_and_a_queued_delete_action(client, store, enqueuer, active_server):
    response = client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER)
    assert response.status_code == 204
    assert response.get_data() == b""
    request_id = response.headers["x-openstack-request-id"]
    assert store.get_action(request_id).action == "delete"
    assert enqueuer.sent[-1][0] == request_id
    assert store.get_instance(active_server.id).task_state == "deleting"


def test_delete__locked_is_409_for_owner(client, store, active_server):
    set_fields(store, active_server.id, locked=True)
    response = client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Instance {active_server.id} is locked")


def test_delete__twice_is_idempotent(client, active_server):
    assert client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER).status_code == 204
    assert client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER).status_code == 204


def test_create__accepts_the_image_block_device_osc_sends(client, store):
    device = {"uuid": IMAGE_ID, "boot_index": 0, "source_type": "image", "destination_type": "local",
              "delete_on_termination": True}
    response = create(client, block_device_mapping_v2=[device], networks="none", min_count=1, max_count=1)
    assert response.status_code == 202
    without_image_ref = create(client, imageRef="", block_device_mapping_v2=[device])
    assert store.get_instance(without_image_ref.get_json()["server"]["id"]).image_id == IMAGE_ID


@pytest.mark.parametrize("device", [
    {"source_type": "volume", "destination_type": "volume", "uuid": UNKNOWN_ID, "boot_index": 0},
    {"source_type": "blank", "destination_type": "local", "boot_index": -1},
    {"source_type": "image", "destination_type": "volume", "uuid": IMAGE_ID, "boot_index": 0},
])
def test_create__volume_block_devices_are_400(client, store, device):
    response = create(client, block_device_mapping_v2=[device])
    assert fault(response) == ("badRequest", 400,
                               "Block device mappings other than the local boot image are not supported.")
    assert store.list_instances() == []
