"""os-services writes: PUT by action (below 2.53) and by uuid (2.53+), DELETE, and what the
scheduler then does with a disabled or forced-down host (create, live and cold migration)."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from compute.models import Host, Migration
from compute.store import Store
from tests.api.conftest import ADMIN, HOST, OWNER, fault, mv
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine

KVM1 = Host(name=HOST).service_uuid
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


def put(client: FlaskClient, ref: str, body: Any, version: str = "2.53", headers: dict[str, str] = ADMIN) -> Any:
    return client.put(f"/v2.1/os-services/{ref}", json=body, headers={**headers, **mv(version)})


def service(client: FlaskClient, host: str = HOST, version: str = "2.53") -> dict[str, Any]:
    [found] = client.get(f"/v2.1/os-services?host={host}", headers={**ADMIN, **mv(version)}).get_json()["services"]
    return found


# ---- 2.53+: PUT /os-services/{service_uuid} ----------------------------------------------------------
def test_253__disable_with_a_reason_returns_the_whole_record(client: FlaskClient) -> None:
    response = put(client, KVM1, {"status": "disabled", "disabled_reason": "maintenance"})
    assert response.status_code == 200
    body = response.get_json()["service"]
    assert set(body) == {"id", "binary", "disabled_reason", "host", "state", "status", "updated_at", "zone",
                         "forced_down"}
    assert (body["id"], body["host"], body["status"], body["disabled_reason"], body["state"]) == (
        KVM1, HOST, "disabled", "maintenance", "up")
    assert service(client) == body


def test_253__enable_clears_the_reason_and_forced_down_alone_or_with_status(client: FlaskClient) -> None:
    put(client, KVM1, {"status": "disabled", "disabled_reason": "maintenance"})
    enabled = put(client, KVM1, {"status": "enabled"}).get_json()["service"]
    assert (enabled["status"], enabled["disabled_reason"]) == ("enabled", None)
    down = put(client, KVM1, {"forced_down": True}).get_json()["service"]
    assert (down["forced_down"], down["state"], down["status"]) == (True, "down", "enabled")
    both = put(client, KVM1, {"status": "disabled", "forced_down": "no"}).get_json()["service"]
    assert (both["forced_down"], both["state"], both["status"], both["disabled_reason"]) == (
        False, "up", "disabled", None)


@pytest.mark.parametrize("body, message", [
    ({}, "No updates were requested. Fields 'status' or 'forced_down' should be specified."),
    ({"disabled_reason": "why"}, "No updates were requested. Fields 'status' or 'forced_down' should be specified."),
    ({"status": "enabled", "disabled_reason": "why"}, "Specifying 'disabled_reason' with status 'enabled' is invalid."),
])
def test_253__nothing_to_do_or_a_reason_to_enable_is_400(client: FlaskClient, body: Any, message: str) -> None:
    assert fault(put(client, KVM1, body)) == ("badRequest", 400, message)


@pytest.mark.parametrize("body", [{"status": "off"}, {"forced_down": "maybe"}, {"host": HOST},
                                  {"status": "disabled", "disabled_reason": ""}, None])
def test_253__schema_errors_are_400(client: FlaskClient, body: Any) -> None:
    assert fault(put(client, KVM1, body))[:2] == ("badRequest", 400)


def test_253__bad_uuid_is_400_before_policy_then_403_then_404(client: FlaskClient) -> None:
    assert fault(put(client, "1", {"status": "enabled"}, headers=OWNER)) == ("badRequest", 400, "Invalid uuid 1")
    assert fault(put(client, KVM1, {"status": "enabled"}, headers=OWNER)) == (
        "forbidden", 403, "Policy doesn't allow os_compute_api:os-services:update to be performed.")
    assert fault(put(client, UNKNOWN_UUID, {"status": "enabled"})) == (
        "itemNotFound", 404, f"Service {UNKNOWN_UUID} could not be found.")


# ---- below 2.53: PUT /os-services/{action} -----------------------------------------------------------
def legacy(client: FlaskClient, action: str, version: str = "2.11", **body: Any) -> Any:
    return put(client, action, {"host": HOST, "binary": "nova-compute", **body}, version)


def test_legacy__disable_log_reason_then_enable(client: FlaskClient) -> None:
    response = legacy(client, "disable-log-reason", disabled_reason="maintenance")
    assert response.get_json() == {"service": {"host": HOST, "binary": "nova-compute", "status": "disabled",
                                               "disabled_reason": "maintenance"}}
    assert (service(client)["status"], service(client)["disabled_reason"]) == ("disabled", "maintenance")
    assert legacy(client, "enable").get_json() == {"service": {"host": HOST, "binary": "nova-compute",
                                                               "status": "enabled"}}
    assert (service(client)["status"], service(client)["disabled_reason"]) == ("enabled", None)


def test_legacy__disable_keeps_no_reason_even_when_given(client: FlaskClient) -> None:
    body = legacy(client, "disable", "2.1", disabled_reason="ignored").get_json()
    assert body == {"service": {"host": HOST, "binary": "nova-compute", "status": "disabled"}}
    assert service(client)["disabled_reason"] is None


def test_legacy__force_down_from_211(client: FlaskClient) -> None:
    assert legacy(client, "force-down", forced_down=True).get_json() == {
        "service": {"host": HOST, "binary": "nova-compute", "forced_down": True}}
    assert (service(client)["state"], service(client)["forced_down"]) == ("down", True)
    assert legacy(client, "force-down", forced_down="false").get_json()["service"]["forced_down"] is False
    assert service(client)["state"] == "up"
    assert fault(legacy(client, "force-down", "2.10")) == ("itemNotFound", 404, "Unknown action")
    assert fault(legacy(client, "force-down", "2.10", forced_down=True))[:2] == ("badRequest", 400)  # schema


@pytest.mark.parametrize("action, body, expected", [
    ("disable-log-reason", {}, ("badRequest", 400, "Missing disabled reason field")),
    ("force-down", {}, ("badRequest", 400, "Missing forced_down field")),
    ("reboot", {}, ("itemNotFound", 404, "Unknown action")),
    ("enable", {"binary": "nova-scheduler"}, ("badRequest", 400, "Updating a nova-scheduler service is not "
                                                                 "supported. Only nova-compute services can be updated.")),
    ("enable", {"host": "compute-arm-9"}, ("itemNotFound", 404, "Host 'compute-arm-9' is not mapped to any cell")),
])
def test_legacy__errors(client: FlaskClient, action: str, body: dict[str, Any], expected: tuple) -> None:
    assert fault(legacy(client, action, **body)) == expected


def test_legacy__schema_then_policy(client: FlaskClient) -> None:
    assert fault(put(client, "enable", {"host": HOST}, "2.1"))[:2] == ("badRequest", 400)
    assert fault(put(client, "enable", {"host": HOST, "binary": "nova-compute"}, "2.1", OWNER))[:2] == (
        "forbidden", 403)


# ---- DELETE /os-services/{id} ----------------------------------------------------------------------
def test_delete__integer_id_below_253_removes_the_service_its_hypervisor_and_memberships(
        client: FlaskClient, store: Store) -> None:
    aggregate = store.create_aggregate("agg", "az1")
    store.add_aggregate_host(aggregate.id, "compute-xen-2")
    response = client.delete("/v2.1/os-services/5", headers=ADMIN)
    assert (response.status_code, response.get_data()) == (204, b"")
    hosts = [s["host"] for s in client.get("/v2.1/os-services", headers=ADMIN).get_json()["services"]]
    assert "compute-xen-2" not in hosts and len(hosts) == 6
    hypervisors = client.get("/v2.1/os-hypervisors", headers=ADMIN).get_json()["hypervisors"]
    assert "compute-xen-2" not in [h["hypervisor_hostname"] for h in hypervisors]
    assert store.get_aggregate(aggregate.id).hosts == []
    assert fault(client.delete("/v2.1/os-services/5", headers=ADMIN)) == ("itemNotFound", 404, "Service 5 not found.")


def test_delete__uuid_from_253(client: FlaskClient) -> None:
    xen2 = Host(name="compute-xen-2").service_uuid
    assert fault(client.delete("/v2.1/os-services/5", headers={**ADMIN, **mv("2.53")})) == (
        "badRequest", 400, "Invalid uuid 5")
    assert client.delete(f"/v2.1/os-services/{xen2}", headers={**ADMIN, **mv("2.53")}).status_code == 204
    assert fault(client.delete(f"/v2.1/os-services/{xen2}", headers={**ADMIN, **mv("2.53")})) == (
        "itemNotFound", 404, f"Service {xen2} not found.")


def test_delete__policy_first_then_the_integer(client: FlaskClient) -> None:
    assert fault(client.delete("/v2.1/os-services/abc", headers=OWNER))[:2] == ("forbidden", 403)
    assert fault(client.delete("/v2.1/os-services/abc", headers=ADMIN)) == (
        "badRequest", 400, "Invalid input received: id must be an integer")


def test_delete__refused_while_hosting_servers_or_migrations(client: FlaskClient, store: Store,
                                                              active_server: Any) -> None:
    assert fault(client.delete("/v2.1/os-services/1", headers=ADMIN)) == (
        "conflictingRequest", 409, "Unable to delete compute service that is hosting instances. "
                                   "Migrate or delete the instances first.")
    store.create_migration(Migration(instance_uuid=active_server.id, migration_type="migration",
                                     status="finished", source_compute=HOST, dest_compute="compute-kvm-3"))
    assert fault(client.delete("/v2.1/os-services/3", headers=ADMIN)) == (
        "conflictingRequest", 409, "Unable to delete compute service that has in-progress migrations. "
                                   "Complete the migrations or delete the instances first.")


# ---- the scheduler: a disabled or forced-down host takes nothing -----------------------------------------
def disable_all_but(client: FlaskClient, keep: set[str]) -> None:
    for found in client.get("/v2.1/os-services", headers={**ADMIN, **mv("2.53")}).get_json()["services"]:
        if found["host"] not in keep:
            put(client, found["id"], {"status": "disabled", "disabled_reason": "maintenance"})


def boot(client: FlaskClient, engine: Engine, **extra: Any) -> dict[str, Any]:
    response = client.post("/v2.1/servers", headers=ADMIN, json={"server": {
        "name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1", "networks": "none", **extra}})
    assert response.status_code == 202, response.get_data(as_text=True)
    engine.drain()
    return shown(client, response.get_json()["server"]["id"])


def shown(client: FlaskClient, server_id: str) -> dict[str, Any]:
    return client.get(f"/v2.1/servers/{server_id}", headers={**ADMIN, **mv("2.84")}).get_json()["server"]


def last_event_details(client: FlaskClient, server_id: str, event: str) -> str:
    actions = client.get(f"/v2.1/servers/{server_id}/os-instance-actions", headers={**ADMIN, **mv("2.84")})
    request_id = actions.get_json()["instanceActions"][0]["request_id"]
    detail = client.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}",
                        headers={**ADMIN, **mv("2.84")}).get_json()["instanceAction"]
    [found] = [e for e in detail["events"] if e["event"] == event]
    return found["details"]


def test_scheduler__create_avoids_disabled_hosts_and_says_why_when_none_is_left(
        engine_client: FlaskClient, engine: Engine) -> None:
    disable_all_but(engine_client, {"compute-xen-2"})
    assert boot(engine_client, engine)["OS-EXT-SRV-ATTR:host"] == "compute-xen-2"
    put(engine_client, Host(name="compute-xen-2").service_uuid, {"forced_down": True})
    failed = boot(engine_client, engine)
    assert failed["status"] == "ERROR"
    details = last_event_details(engine_client, failed["id"], "conductor_schedule_and_build_instances")
    assert "compute-kvm-1: ComputeFilter: service disabled (maintenance)" in details
    assert "compute-xen-2: ComputeFilter: service is down" in details


def test_scheduler__live_migration_skips_disabled_and_down_destinations(engine_client: FlaskClient,
                                                                        engine: Engine) -> None:
    server = boot(engine_client, engine, availability_zone=f"nova:{HOST}")
    put(engine_client, Host(name="compute-kvm-2").service_uuid, {"status": "disabled", "disabled_reason": "maint"})
    put(engine_client, Host(name="compute-kvm-3").service_uuid, {"forced_down": True})
    put(engine_client, Host(name="compute-kvm-4").service_uuid, {"status": "disabled", "disabled_reason": "maint"})
    put(engine_client, Host(name="compute-kvm-5").service_uuid, {"forced_down": True})
    response = engine_client.post(f"/v2.1/servers/{server['id']}/action", headers={**ADMIN, **mv("2.34")},
                                  json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    assert response.status_code == 202
    engine.drain()
    assert shown(engine_client, server["id"])["OS-EXT-SRV-ATTR:host"] == HOST
    details = last_event_details(engine_client, server["id"], "conductor_live_migrate_instance")
    assert details.startswith("No valid host was found.")
    assert "compute-kvm-2: ComputeFilter: service disabled (maint)" in details
    assert "compute-kvm-3: ComputeFilter: service is down" in details
    assert "compute-kvm-4: ComputeFilter: service disabled (maint)" in details
    assert "compute-kvm-5: ComputeFilter: service is down" in details
    put(engine_client, Host(name="compute-kvm-3").service_uuid, {"forced_down": False})
    engine_client.post(f"/v2.1/servers/{server['id']}/action", headers={**ADMIN, **mv("2.34")},
                       json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    engine.drain()
    assert shown(engine_client, server["id"])["OS-EXT-SRV-ATTR:host"] == "compute-kvm-3"


def test_scheduler__cold_migration_skips_disabled_hosts(engine_client: FlaskClient, engine: Engine) -> None:
    server = boot(engine_client, engine, availability_zone=f"nova:{HOST}")
    disable_all_but(engine_client, {HOST, "compute-xen-1"})
    response = engine_client.post(f"/v2.1/servers/{server['id']}/action", headers=ADMIN, json={"migrate": None})
    assert response.status_code == 202
    engine.drain()
    moved = shown(engine_client, server["id"])
    assert (moved["status"], moved["OS-EXT-SRV-ATTR:host"]) == ("VERIFY_RESIZE", "compute-xen-1")
    details = last_event_details(engine_client, server["id"], "cold_migrate")
    assert "compute-kvm-2: ComputeFilter: service disabled (maintenance)" in details
