"""os-availability-zone, and zones as the scheduler keeps them: boot into a zone, moves that stay in it,
servers without a zone that go anywhere, ``default_schedule_zone`` and forced hosts."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from compute.store import Store
from tests.api.conftest import ADMIN, HOST, OWNER, fault, mv
from tests.api.test_services_update import boot, shown
from tests.support.engine import Engine

AZ1 = ("compute-kvm-1", "compute-kvm-2")


def zone(store: Store, name: str, *hosts: str) -> None:
    aggregate = store.create_aggregate(f"agg-{name}", name)
    for host in hosts:
        store.add_aggregate_host(aggregate.id, host)


def zones(client: FlaskClient, detail: bool = False, headers: dict[str, str] = OWNER,
          version: str = "2.1") -> Any:
    path = "/v2.1/os-availability-zone" + ("/detail" if detail else "")
    return client.get(path, headers={**headers, **mv(version)})


# ---- GET /os-availability-zone[/detail] ---------------------------------------------------------------
def test_list__every_member_sees_zone_names_and_states(client: FlaskClient, store: Store) -> None:
    assert zones(client).get_json() == {"availabilityZoneInfo": [
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]}
    zone(store, "az1", *AZ1)
    assert [(z["zoneName"], z["zoneState"]["available"], z["hosts"]) for z in
            zones(client).get_json()["availabilityZoneInfo"]] == [("az1", True, None), ("nova", True, None)]


def test_list__a_zone_whose_services_are_all_disabled_is_unavailable_and_last(client: FlaskClient,
                                                                             store: Store, fleet: Any) -> None:
    zone(store, "az1", *AZ1)
    for host in AZ1:
        fleet.set_host_state(host, enabled=False, disabled_reason="maintenance")
    fleet.set_host_state("compute-kvm-3", up=False)  # down but enabled: its zone stays available
    assert [(z["zoneName"], z["zoneState"]["available"]) for z in zones(client).get_json()["availabilityZoneInfo"]] == [
        ("nova", True), ("az1", False)]


def test_detail__admins_see_hosts_and_services_of_available_zones(client: FlaskClient, store: Store,
                                                                  fleet: Any) -> None:
    zone(store, "az1", *AZ1)
    fleet.set_host_state("compute-kvm-2", up=False)
    fleet.set_host_state("compute-xen-2", enabled=False)
    assert fault(zones(client, detail=True)) == (
        "forbidden", 403, "Policy doesn't allow os_compute_api:os-availability-zone:detail to be performed.")
    info = {z["zoneName"]: z for z in zones(client, True, ADMIN).get_json()["availabilityZoneInfo"]}
    assert set(info["az1"]["hosts"]) == set(AZ1)
    kvm2 = info["az1"]["hosts"]["compute-kvm-2"]["nova-compute"]
    assert (kvm2["available"], kvm2["active"]) == (False, True) and kvm2["updated_at"]
    assert info["az1"]["hosts"][HOST]["nova-compute"]["available"] is True
    # disabled services are left out
    assert set(info["nova"]["hosts"]) == {"compute-kvm-3", "compute-kvm-4", "compute-kvm-5", "compute-xen-1"}


def test_queries__strict_from_2102(client: FlaskClient) -> None:
    assert zones(client, version="2.101", headers=OWNER).status_code == 200
    response = client.get("/v2.1/os-availability-zone?x=1", headers={**OWNER, **mv("2.102")})
    assert fault(response)[:2] == ("badRequest", 400)


# ---- boot into a zone -----------------------------------------------------------------------------------
def test_boot__a_zone_with_no_enabled_service_is_400(engine_client: FlaskClient, store: Store, fleet: Any) -> None:
    zone(store, "az1", *AZ1)
    for host in AZ1:
        fleet.set_host_state(host, enabled=False)
    for requested in ("az1", "mars"):
        response = engine_client.post("/v2.1/servers", headers=ADMIN, json={"server": {
            "name": "vm", "flavorRef": "1", "availability_zone": requested}})
        assert fault(response) == ("badRequest", 400, "The requested availability zone is not available")


def test_boot__lands_in_the_zone_and_shows_it_pinned(engine_client: FlaskClient, engine: Engine,
                                                      store: Store) -> None:
    zone(store, "az1", *AZ1)
    server = boot(engine_client, engine, availability_zone="az1")
    assert server["OS-EXT-SRV-ATTR:host"] in AZ1  # compute-kvm-3 has the most free RAM, but is not in az1
    assert server["OS-EXT-AZ:availability_zone"] == "az1"
    at_296 = engine_client.get(f"/v2.1/servers/{server['id']}", headers={**ADMIN, **mv("2.96")}).get_json()
    assert at_296["server"]["pinned_availability_zone"] == "az1"
    free = boot(engine_client, engine)
    assert free["OS-EXT-SRV-ATTR:host"] == "compute-kvm-3"
    assert free["OS-EXT-AZ:availability_zone"] == "nova"


def move(client: FlaskClient, engine: Engine, server_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v2.1/servers/{server_id}/action", headers={**ADMIN, **mv("2.34")}, json=body)
    assert response.status_code == 202, response.get_data(as_text=True)
    engine.drain()
    return shown(client, server_id)


LIVE = {"os-migrateLive": {"host": None, "block_migration": "auto"}}


def test_moves__a_server_booted_into_a_zone_stays_in_it(engine_client: FlaskClient, engine: Engine,
                                                         store: Store) -> None:
    zone(store, "az1", *AZ1)
    server = boot(engine_client, engine, availability_zone="az1")
    first = server["OS-EXT-SRV-ATTR:host"]
    other = AZ1[1] if first == AZ1[0] else AZ1[0]
    live = move(engine_client, engine, server["id"], LIVE)
    assert live["OS-EXT-SRV-ATTR:host"] == other
    cold = move(engine_client, engine, server["id"], {"migrate": None})
    assert (cold["status"], cold["OS-EXT-SRV-ATTR:host"]) == ("VERIFY_RESIZE", first)
    assert cold["OS-EXT-AZ:availability_zone"] == "az1"


def test_moves__with_no_host_left_in_the_zone_the_scheduler_says_so(engine_client: FlaskClient, engine: Engine,
                                                                     store: Store) -> None:
    zone(store, "az1", HOST)
    server = boot(engine_client, engine, availability_zone="az1")
    assert move(engine_client, engine, server["id"], LIVE)["OS-EXT-SRV-ATTR:host"] == HOST
    actions = engine_client.get(f"/v2.1/servers/{server['id']}/os-instance-actions", headers=ADMIN).get_json()
    request_id = actions["instanceActions"][0]["request_id"]
    events = engine_client.get(f"/v2.1/servers/{server['id']}/os-instance-actions/{request_id}",
                               headers={**ADMIN, **mv("2.84")}).get_json()["instanceAction"]["events"]
    [conductor] = [e for e in events if e["event"] == "conductor_live_migrate_instance"]
    assert "compute-kvm-3: AvailabilityZoneFilter: host is in nova, not az1" in conductor["details"]


def test_moves__a_server_booted_without_a_zone_may_leave_its_hosts_zone(engine_client: FlaskClient,
                                                                        engine: Engine, store: Store) -> None:
    zone(store, "az1", *AZ1)
    server = boot(engine_client, engine, availability_zone=f"nova:{HOST}")  # nova is not kvm-1's zone: not pinned
    assert (server["OS-EXT-SRV-ATTR:host"], server["OS-EXT-AZ:availability_zone"]) == (HOST, "az1")
    moved = move(engine_client, engine, server["id"], LIVE)
    assert (moved["OS-EXT-SRV-ATTR:host"], moved["OS-EXT-AZ:availability_zone"]) == ("compute-kvm-3", "nova")


def test_default_schedule_zone__pins_a_server_created_without_a_zone(store: Store, fleet: Any,
                                                                    settings: Any) -> None:
    from api.app import create_app
    from tests.support.engine import build_engine

    zone(store, "az1", *AZ1)
    pinned = settings.model_copy(update={"default_schedule_zone": "az1"})
    engine_ = build_engine(store, fleet, pinned)
    client = create_app(pinned, engine_.service).test_client()
    server = boot(client, engine_)
    assert server["OS-EXT-SRV-ATTR:host"] in AZ1
    assert store.get_instance(server["id"]).availability_zone == "az1"


@pytest.mark.parametrize("requested, pinned", [("az1:compute-kvm-1", "az1"), ("az2:compute-kvm-1", None),
                                               ("nova:compute-kvm-3", "nova"), ("nova:compute-kvm-1", None),
                                               ("az1::compute-kvm-1", "az1")])
def test_forced_host__keeps_the_zone_only_when_the_host_is_in_it(client: FlaskClient, store: Store,
                                                                  requested: str, pinned: str | None) -> None:
    zone(store, "az1", *AZ1)
    response = client.post("/v2.1/servers", headers=ADMIN, json={"server": {
        "name": "vm", "flavorRef": "1", "availability_zone": requested}})
    assert response.status_code == 202, response.get_data(as_text=True)
    created = store.get_instance(response.get_json()["server"]["id"])
    assert (created.availability_zone, created.requested_host) == (pinned, requested.rsplit(":", 1)[-1])


def test_forced_host__more_than_two_colons_is_400(client: FlaskClient) -> None:
    response = client.post("/v2.1/servers", headers=ADMIN, json={"server": {
        "name": "vm", "flavorRef": "1", "availability_zone": "a:b:c:d"}})
    assert fault(response) == ("badRequest", 400, "Invalid input received: Unable to parse availability_zone")


def test_default_zone__requesting_it_restricts_nothing_when_no_aggregate_names_it(
        engine_client: FlaskClient, engine: Engine, store: Store) -> None:
    """Nova's ``map_az_to_placement_aggregate``: only a zone some aggregate has becomes a restriction."""
    zone(store, "az1", "compute-kvm-3")
    server = boot(engine_client, engine, availability_zone="nova")
    assert server["OS-EXT-SRV-ATTR:host"] == "compute-kvm-3"
