"""Server create (POST /servers): what clients send, what is refused, and what is recorded."""
from __future__ import annotations

import pytest

from api.app import create_app
from tests.api.conftest import (
    ADMIN,
    HOST,
    IMAGE_ID,
    OWNER,
    UNKNOWN_ID,
    fault,
    mv,
)
from tests.support.engine import build_engine


def create(client, headers=OWNER, **server):
    body = {"server": {"name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1", **server}}
    return client.post("/v2.1/servers", json=body, headers=headers)


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


@pytest.mark.parametrize("counts", [{"min_count": 3, "max_count": 2}, {"min_count": "10", "max_count": "9"},
                                    {"min_count": "1" + "0" * 4000, "max_count": "9" * 4000}])
def test_create__min_count_above_max_count_is_400(client, store, counts):
    """Several servers per request: tests/api/test_multi_create.py."""
    assert fault(create(client, **counts)) == ("badRequest", 400, "min_count must be <= max_count")
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


def test_create__access_ips_are_kept_and_shown(client, store):
    response = create(client, networks="none", accessIPv4="203.0.113.9", accessIPv6="2001:db8::9")
    server_id = response.get_json()["server"]["id"]
    stored = store.get_instance(server_id)
    assert (stored.access_ip_v4, stored.access_ip_v6) == ("203.0.113.9", "2001:db8::9")
    shown = client.get(f"/v2.1/servers/{server_id}", headers=OWNER).get_json()["server"]
    assert (shown["accessIPv4"], shown["accessIPv6"]) == ("203.0.113.9", "2001:db8::9")


# ---- hostname (2.90+) ---------------------------------------------------------------------

def test_hostname__from_290_is_kept_and_shown_to_everyone(client, store):
    response = create(client, {**OWNER, **mv("2.90")}, hostname="db-primary")
    assert response.status_code == 202
    server_id = response.get_json()["server"]["id"]
    assert store.get_instance(server_id).hostname == "db-primary"
    for headers in (OWNER, ADMIN):
        shown = client.get(f"/v2.1/servers/{server_id}", headers={**headers, **mv("2.90")}).get_json()["server"]
        assert shown["OS-EXT-SRV-ATTR:hostname"] == "db-primary"
    below = client.get(f"/v2.1/servers/{server_id}", headers={**OWNER, **mv("2.89")}).get_json()["server"]
    assert "OS-EXT-SRV-ATTR:hostname" not in below  # before 2.90 an extended attribute: admins only
    admin_below = client.get(f"/v2.1/servers/{server_id}", headers={**ADMIN, **mv("2.3")}).get_json()["server"]
    assert admin_below["OS-EXT-SRV-ATTR:hostname"] == "db-primary"


def test_hostname__without_one_is_the_name_sanitised_as_nova_does(client, store):
    server_id = create(client, name="My_Web Server.1").get_json()["server"]["id"]
    assert store.get_instance(server_id).hostname == "my-web-server-1"


@pytest.mark.parametrize("version, hostname, accepted", [
    ("2.89", "db", False),  # not in the schema before 2.90
    ("2.90", "db-primary", True),
    ("2.90", "db.example.com", False),  # 2.90-2.93: a single label
    ("2.90", "x", False),
    ("2.94", "db.example.com", True),  # 2.94: an FQDN
    ("2.94", "x" * 52 + "-guest-test.domaintest.com", True),  # Tempest's test_verify_hostname_allows_fqdn
    ("2.94", "db example", False),
])
def test_hostname__schema_per_microversion(client, version, hostname, accepted):
    response = create(client, {**OWNER, **mv(version)}, hostname=hostname)
    if accepted:
        assert response.status_code == 202
    else:
        assert fault(response)[:2] == ("badRequest", 400)


def test_hostname__with_several_servers_is_novas_400(client, store):
    response = create(client, {**OWNER, **mv("2.90")}, hostname="db", max_count=2)
    assert fault(response) == ("badRequest", 400, "Unable to allocate a single hostname to multiple instances")
    assert store.list_instances() == []


# ---- host / hypervisor_hostname (2.74+) ---------------------------------------------------------

REQUESTED = "compute-kvm-2"


def test_requested_destination__admin_only_from_274(client, store):
    response = create(client, {**OWNER, **mv("2.74")}, host=REQUESTED)
    denied = "Policy doesn't allow compute:servers:create:requested_destination to be performed."
    assert fault(response) == ("forbidden", 403, denied)
    assert fault(create(client, {**ADMIN, **mv("2.73")}, host=REQUESTED))[:2] == ("badRequest", 400)
    for fields in ({"host": REQUESTED}, {"hypervisor_hostname": REQUESTED},
                   {"host": REQUESTED, "hypervisor_hostname": REQUESTED}):
        response = create(client, {**ADMIN, **mv("2.74")}, **fields)
        assert response.status_code == 202, fields
        assert store.get_instance(response.get_json()["server"]["id"]).requested_host == REQUESTED


@pytest.mark.parametrize("fields, message", [
    ({"host": "compute-nope"}, "Compute host compute-nope could not be found."),
    ({"hypervisor_hostname": "compute-nope"}, "Compute host compute-nope could not be found."),
    ({"host": REQUESTED, "hypervisor_hostname": HOST}, f"Compute host {REQUESTED} could not be found."),
    ({"host": REQUESTED, "availability_zone": f"nova:{HOST}"},
     ("One mechanism with host and/or hypervisor_hostname and another mechanism with zone:host:node are "
      "mutually exclusive.")),
])
def test_requested_destination__unknown_or_conflicting_is_400(client, store, fields, message):
    assert fault(create(client, {**ADMIN, **mv("2.74")}, **fields)) == ("badRequest", 400, message)
    assert store.list_instances() == []


def test_requested_destination__the_scheduler_checks_it_rather_than_forcing_it(store, fleet, settings):
    """Nova's requested_destination: the host is the only candidate, and every filter still applies."""
    engine = build_engine(store, fleet, settings)
    client = create_app(settings, engine.service).test_client()
    landed = create(client, {**ADMIN, **mv("2.74")}, host=REQUESTED)
    engine.drain()
    shown = client.get(f"/v2.1/servers/{landed.get_json()['server']['id']}", headers=ADMIN).get_json()["server"]
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", REQUESTED)

    store.update_host(REQUESTED, enabled=False, disabled_reason="maintenance")
    refused = create(client, {**ADMIN, **mv("2.74")}, host=REQUESTED)
    engine.drain()
    server_id = refused.get_json()["server"]["id"]
    shown = client.get(f"/v2.1/servers/{server_id}", headers=ADMIN).get_json()["server"]
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ERROR", None)
    [event] = store.list_events(refused.headers["x-openstack-request-id"])
    assert (event.event, event.result) == ("conductor_schedule_and_build_instances", "Error")
    assert f"{REQUESTED}: ComputeFilter: service disabled (maintenance)" in event.details
