"""POST /servers with min_count/max_count (nova compute/api.py ``_provision_instances``): N servers named
``<name>-<n>``, one reservation id, quotas checked for the whole request, all or nothing at min_count;
``return_reservation_id``; ``GET /servers?reservation_id=``; the reservation id in the server view."""
from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from compute.errors import QueueUnavailable
from compute.store import Store
from tests.api.conftest import ADMIN, IMAGE_ID, OWNER, fault, mv
from tests.support.engine import build_engine

RESERVATION_ID = re.compile(r"^r-[0-9a-z]{8}$")


def create(client: FlaskClient, headers: dict[str, str] = OWNER, **server: Any) -> Any:
    body = {"server": {"name": "web", "imageRef": IMAGE_ID, "flavorRef": "1", "networks": "none", **server}}
    return client.post("/v2.1/servers", json=body, headers=headers)


def servers_of(client: FlaskClient, query: str = "", headers: dict[str, str] = OWNER) -> list[dict[str, Any]]:
    response = client.get(f"/v2.1/servers/detail{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["servers"]


def by_name(store: Store) -> dict[str, Any]:
    return {i.name: i for i in store.list_instances()}


# ---- several servers ---------------------------------------------------------------------------
def test_min_count__makes_that_many_named_and_numbered_as_nova_does(client, store):
    response = create(client, min_count=3)
    assert response.status_code == 202
    made = by_name(store)
    assert sorted(made) == ["web-1", "web-2", "web-3"]
    first = response.get_json()["server"]
    assert first["id"] == made["web-1"].id  # the 202 shows the first server, with its Location
    assert response.headers["Location"].endswith(f"/servers/{made['web-1'].id}")
    assert "reservation_id" not in response.get_json()
    assert [made[f"web-{n}"].launch_index for n in (1, 2, 3)] == [0, 1, 2]
    assert [made[f"web-{n}"].hostname for n in (1, 2, 3)] == ["web-1", "web-2", "web-3"]
    [reservation] = {i.reservation_id for i in made.values()}
    assert RESERVATION_ID.match(reservation)


def test_min_count__each_server_has_its_own_create_action(client, store):
    response = create(client, max_count=2)
    request_id = response.headers["x-openstack-request-id"]
    made = by_name(store)
    [first] = store.list_actions(made["web-1"].id)
    [second] = store.list_actions(made["web-2"].id)
    assert (first.action, first.request_id) == ("create", request_id)
    assert second.action == "create" and second.request_id != request_id
    assert second.request_id.startswith("req-") and store.get_run(second.request_id).instance_uuid == made["web-2"].id


def test_one_server__keeps_its_name_and_gets_a_reservation_id(client, store):
    create(client, min_count=1, max_count=1)
    [inst] = store.list_instances()
    assert (inst.name, inst.hostname, inst.launch_index) == ("web", "web", 0)
    assert RESERVATION_ID.match(inst.reservation_id)


# ---- return_reservation_id and the filter ----------------------------------------------------------
@pytest.mark.parametrize("flag", [True, "True", "1", "yes"])
def test_return_reservation_id__the_202_is_only_the_reservation_id(client, store, flag):
    response = create(client, min_count=2, return_reservation_id=flag)
    assert response.status_code == 202
    body = response.get_json()
    assert set(body) == {"reservation_id"} and RESERVATION_ID.match(body["reservation_id"])
    assert {i.reservation_id for i in store.list_instances()} == {body["reservation_id"]}
    assert "Location" not in response.headers


def test_return_reservation_id__false_is_the_usual_body(client):
    body = create(client, min_count=2, return_reservation_id=False).get_json()
    assert set(body) == {"server"}


def test_list__reservation_id_filters_for_everyone(client, store):
    wanted = create(client, min_count=2, return_reservation_id=True).get_json()["reservation_id"]
    other = create(client, name="db", return_reservation_id=True).get_json()["reservation_id"]
    assert wanted != other
    names = sorted(s["name"] for s in servers_of(client, f"?reservation_id={wanted}"))
    assert names == ["web-1", "web-2"]
    summary = client.get(f"/v2.1/servers?reservation_id={other}", headers=OWNER).get_json()["servers"]
    assert [s["name"] for s in summary] == ["db"]
    assert servers_of(client, "?reservation_id=r-00000000") == []
    assert len(servers_of(client)) == 3


def test_view__reservation_id_and_launch_index_for_admins(client, store):
    reservation = create(client, min_count=2, return_reservation_id=True).get_json()["reservation_id"]
    second = by_name(store)["web-2"]
    admin = client.get(f"/v2.1/servers/{second.id}", headers={**ADMIN, **mv("2.3")}).get_json()["server"]
    assert admin["OS-EXT-SRV-ATTR:reservation_id"] == reservation
    assert admin["OS-EXT-SRV-ATTR:launch_index"] == 1
    assert admin["OS-EXT-SRV-ATTR:hostname"] == "web-2"
    owner = client.get(f"/v2.1/servers/{second.id}", headers={**OWNER, **mv("2.3")}).get_json()["server"]
    assert "OS-EXT-SRV-ATTR:reservation_id" not in owner


# ---- quotas: the whole request, all or nothing at min_count ---------------------------------------
def set_instances_quota(client: FlaskClient, limit: int) -> None:
    response = client.put("/v2.1/os-quota-sets/demo", headers=ADMIN, json={"quota_set": {"instances": limit}})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_quota__max_count_is_cut_to_what_is_left(client, store):
    set_instances_quota(client, 5)
    create(client, name="old", min_count=3)
    response = create(client, min_count=1, max_count=4)
    assert response.status_code == 202
    assert sorted(n for n in by_name(store) if n.startswith("web")) == ["web-1", "web-2"]


def test_quota__below_min_count_is_novas_403_and_nothing_is_made(client, store):
    set_instances_quota(client, 5)
    create(client, name="old", min_count=3)
    response = create(client, min_count=3, max_count=4)
    assert fault(response) == (
        "forbidden", 403, "Quota exceeded for instances: Requested 3-4, but already used 3 of 5 instances")
    assert fault(create(client, min_count=3)) == (
        "forbidden", 403, "Quota exceeded for instances: Requested 3, but already used 3 of 5 instances")
    assert len(store.list_instances()) == 3
    assert store.quota_snapshot("demo").project_usage["instances"] == 3


def test_quota__cores_and_ram_count_for_every_server(client, store):
    response = client.put("/v2.1/os-quota-sets/demo", headers=ADMIN, json={"quota_set": {"cores": 5}})
    assert response.status_code == 200
    create(client, flavorRef="3", max_count=10)  # m1.medium: 2 vcpus, so 2 fit
    assert len(store.list_instances()) == 2
    assert fault(create(client, flavorRef="3"))[2] == ("Quota exceeded for cores: Requested 2, but already used "
                                                       "4 of 5 cores")


def test_huge_max_count__is_cut_by_the_quota(client, store):
    assert create(client, max_count="9" * 4000).status_code == 202
    assert len(store.list_instances()) == 10  # [quota] instances


def test_broker_down__503_and_no_server_of_the_request_is_left(client, store, enqueuer):
    enqueuer.fail_with = QueueUnavailable("The message broker is not answering.")
    response = create(client, min_count=3)
    assert response.status_code == 503
    assert store.list_instances() == []
    assert store.get_action(response.headers["x-openstack-request-id"]) is None
    assert store.quota_snapshot("demo").project_usage.get("instances", 0) == 0


# ---- the builds ------------------------------------------------------------------------------------
def test_build__every_server_of_the_request_goes_active_with_novas_one_event(store, fleet, settings):
    engine = build_engine(store, fleet, settings)
    client = create_app(settings, engine.service).test_client()
    reservation = create(client, min_count=3, return_reservation_id=True).get_json()["reservation_id"]
    engine.drain()
    servers = servers_of(client, f"?all_tenants=1&reservation_id={reservation}", ADMIN)
    assert sorted(s["name"] for s in servers) == ["web-1", "web-2", "web-3"]
    assert {s["status"] for s in servers} == {"ACTIVE"}
    for server in servers:
        [action] = store.list_actions(server["id"])
        events = store.list_events(action.request_id)
        assert [(e.event, e.host, e.result) for e in events] == [
            ("compute__do_build_and_run_instance", server["OS-EXT-SRV-ATTR:host"], "Success")]
