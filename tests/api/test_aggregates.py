"""os-aggregates: the routes and actions, their bodies per microversion, Nova's codes and messages,
and the zone a host gets from its aggregates."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from compute.store import Store
from tests.api.conftest import ADMIN, HOST, OWNER, fault, mv

KVM2 = "compute-kvm-2"


def create(client: FlaskClient, name: str = "agg1", zone: Any = ..., version: str = "2.1",
           headers: dict[str, str] = ADMIN) -> Any:
    body: dict[str, Any] = {"name": name}
    if zone is not ...:
        body["availability_zone"] = zone
    return client.post("/v2.1/os-aggregates", json={"aggregate": body}, headers={**headers, **mv(version)})


def action(client: FlaskClient, aggregate_id: Any, body: Any, version: str = "2.1",
           headers: dict[str, str] = ADMIN) -> Any:
    return client.post(f"/v2.1/os-aggregates/{aggregate_id}/action", json=body, headers={**headers, **mv(version)})


def add_host(client: FlaskClient, aggregate_id: Any, host: str) -> Any:
    return action(client, aggregate_id, {"add_host": {"host": host}})


def zone_of(client: FlaskClient, host: str) -> str:
    [found] = client.get(f"/v2.1/os-services?host={host}", headers=ADMIN).get_json()["services"]
    return found["zone"]


# ---- create, show, list, update, delete ------------------------------------------------------------
def test_create__200_without_hosts_and_metadata_uuid_from_241(client: FlaskClient) -> None:
    response = create(client, "agg1", "az1")
    assert response.status_code == 200
    body = response.get_json()["aggregate"]
    assert set(body) == {"availability_zone", "created_at", "deleted", "deleted_at", "id", "name", "updated_at"}
    assert (body["id"], body["name"], body["availability_zone"], body["deleted"], body["deleted_at"],
            body["updated_at"]) == (1, "agg1", "az1", False, None, None)
    assert "Z" not in body["created_at"] and "+" not in body["created_at"]  # naive, as Nova shows it
    later = create(client, "agg2", None, "2.41").get_json()["aggregate"]
    assert later["availability_zone"] is None and "uuid" in later


def test_show_and_list__hosts_and_metadata(client: FlaskClient) -> None:
    create(client, "agg1", "az1")
    add_host(client, 1, HOST)
    shown = client.get("/v2.1/os-aggregates/1", headers=ADMIN).get_json()["aggregate"]
    assert (shown["hosts"], shown["metadata"]) == ([HOST], {"availability_zone": "az1"})
    assert "uuid" not in shown
    assert "uuid" in client.get("/v2.1/os-aggregates/1", headers={**ADMIN, **mv("2.41")}).get_json()["aggregate"]
    listed = client.get("/v2.1/os-aggregates", headers=ADMIN).get_json()["aggregates"]
    assert listed == [shown]


def test_update__name_and_zone_and_409_for_a_taken_name(client: FlaskClient) -> None:
    create(client, "agg1")
    create(client, "agg2")
    response = client.put("/v2.1/os-aggregates/1", json={"aggregate": {"name": "  renamed ", "availability_zone": "az9"}},
                          headers=ADMIN)
    body = response.get_json()["aggregate"]
    assert (response.status_code, body["name"], body["availability_zone"]) == (200, "renamed", "az9")
    assert body["metadata"] == {"availability_zone": "az9"} and body["updated_at"] is not None
    assert fault(client.put("/v2.1/os-aggregates/1", json={"aggregate": {"name": "agg2"}}, headers=ADMIN)) == (
        "conflictingRequest", 409, "Aggregate agg2 already exists.")
    assert fault(create(client, "agg2")) == ("conflictingRequest", 409, "Aggregate agg2 already exists.")


def test_delete__200_empty_then_404_and_400_while_hosts_remain(client: FlaskClient) -> None:
    create(client, "agg1")
    add_host(client, 1, HOST)
    assert fault(client.delete("/v2.1/os-aggregates/1", headers=ADMIN)) == (
        "badRequest", 400, "Cannot remove host from aggregate 1. Reason: Host aggregate is not empty.")
    action(client, 1, {"remove_host": {"host": HOST}})
    response = client.delete("/v2.1/os-aggregates/1", headers=ADMIN)
    assert (response.status_code, response.get_data()) == (200, b"")
    assert fault(client.get("/v2.1/os-aggregates/1", headers=ADMIN)) == (
        "itemNotFound", 404, "Aggregate 1 could not be found.")
    assert fault(client.delete("/v2.1/os-aggregates/1", headers=ADMIN))[:2] == ("itemNotFound", 404)


# ---- bodies and ids ----------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"aggregate": {"name": " lead"}}, {"aggregate": {"name": ""}}, {"aggregate": {"name": "a" * 256}},
    {"aggregate": {"name": "a", "availability_zone": "az:1"}}, {"aggregate": {"name": "a", "availability_zone": ""}},
    {"aggregate": {"name": "a", "availability_zone": " az"}}, {"aggregate": {"name": "a", "hosts": []}},
    {"aggregate": {}}, {"aggregates": {"name": "a"}}, {"aggregate": {"name": "a"}, "x": 1}, None,
])
def test_create__schema_errors_are_400(client: FlaskClient, body: Any) -> None:
    response = client.post("/v2.1/os-aggregates", json=body, headers=ADMIN)
    assert fault(response)[:2] == ("badRequest", 400)


def test_create__messages_as_nova(client: FlaskClient) -> None:
    assert fault(create(client, " lead"))[2] == ("An invalid 'name' value was provided. The name must be: printable "
                                                 "characters. Can not start or end with whitespace.")
    assert fault(create(client, "a", "az:1"))[2] == ("Invalid input for field/attribute availability_zone. Value: "
                                                     "az:1. 'az:1' is not valid under any of the given schemas")


@pytest.mark.parametrize("body", [{"aggregate": {}}, {"aggregate": {"name": "   "}}, {"aggregate": {"id": 2}},
                                  {"aggregate": {"availability_zone": "a:b"}}])
def test_update__needs_a_name_or_a_zone(client: FlaskClient, body: Any) -> None:
    create(client)
    assert fault(client.put("/v2.1/os-aggregates/1", json=body, headers=ADMIN))[:2] == ("badRequest", 400)


def test_ids__must_be_integers(client: FlaskClient) -> None:
    message = ("badRequest", 400, "Invalid input received: id must be an integer")
    assert fault(client.get("/v2.1/os-aggregates/abc", headers=ADMIN)) == message
    assert fault(client.delete("/v2.1/os-aggregates/1.5", headers=ADMIN)) == message
    assert fault(client.put("/v2.1/os-aggregates/x", json={"aggregate": {"name": "n"}}, headers=ADMIN)) == message
    assert fault(add_host(client, "x", HOST)) == message
    assert fault(client.get("/v2.1/os-aggregates/77", headers=ADMIN)) == (
        "itemNotFound", 404, "Aggregate 77 could not be found.")


def test_query__strict_from_2102(client: FlaskClient) -> None:
    assert client.get("/v2.1/os-aggregates?x=1", headers={**ADMIN, **mv("2.101")}).status_code == 200
    assert fault(client.get("/v2.1/os-aggregates?x=1", headers={**ADMIN, **mv("2.102")}))[:2] == ("badRequest", 400)


def test_policy__admin_only_and_checked_after_the_schema(client: FlaskClient) -> None:
    create(client)
    denied = [
        create(client, "agg9", headers=OWNER),
        client.get("/v2.1/os-aggregates", headers=OWNER),
        client.get("/v2.1/os-aggregates/1", headers=OWNER),
        client.put("/v2.1/os-aggregates/1", json={"aggregate": {"name": "n"}}, headers=OWNER),
        client.delete("/v2.1/os-aggregates/1", headers=OWNER),
        action(client, 1, {"add_host": {"host": HOST}}, headers=OWNER),
        action(client, 1, {"remove_host": {"host": HOST}}, headers=OWNER),
        action(client, 1, {"set_metadata": {"metadata": {}}}, headers=OWNER),
    ]
    rules = ["create", "index", "show", "update", "delete", "add_host", "remove_host", "set_metadata"]
    assert [fault(r) for r in denied] == [
        ("forbidden", 403, f"Policy doesn't allow os_compute_api:os-aggregates:{rule} to be performed.")
        for rule in rules]
    assert fault(create(client, " bad", headers=OWNER))[:2] == ("badRequest", 400)


# ---- actions ------------------------------------------------------------------------------------------
def test_actions__dispatch_by_the_one_key(client: FlaskClient) -> None:
    create(client)
    assert fault(action(client, 1, {"reboot": None})) == ("badRequest", 400, "There is no such action: reboot")
    assert fault(action(client, 1, {"add_host": {"host": HOST}, "remove_host": {"host": HOST}})) == (
        "badRequest", 400, "Malformed request body")
    assert fault(action(client, 1, {"add_host": {"host": "bad host"}}))[:2] == ("badRequest", 400)
    assert fault(action(client, 1, {"add_host": {}}))[:2] == ("badRequest", 400)


def test_add_host__errors(client: FlaskClient) -> None:
    create(client)
    assert fault(add_host(client, 1, "compute-arm-1")) == (
        "itemNotFound", 404, "Compute host compute-arm-1 could not be found.")
    assert fault(add_host(client, 9, HOST)) == ("itemNotFound", 404, "Aggregate 9 could not be found.")
    assert add_host(client, 1, HOST).get_json()["aggregate"]["hosts"] == [HOST]
    assert fault(add_host(client, 1, HOST)) == ("conflictingRequest", 409, f"Aggregate 1 already has host {HOST}.")


def test_remove_host__not_a_member_or_unknown_is_nova_404(client: FlaskClient) -> None:
    create(client)
    for aggregate_id, host in ((1, HOST), (1, "compute-arm-1"), (9, HOST)):
        assert fault(action(client, aggregate_id, {"remove_host": {"host": host}})) == (
            "itemNotFound", 404, f"Cannot remove host {host} in aggregate {aggregate_id}")


def test_set_metadata__merges_deletes_and_can_set_the_zone(client: FlaskClient) -> None:
    create(client)
    add_host(client, 1, HOST)
    body = action(client, 1, {"set_metadata": {"metadata": {"ssd": "true", "rack": "r1"}}}).get_json()["aggregate"]
    assert body["metadata"] == {"ssd": "true", "rack": "r1"} and body["availability_zone"] is None
    body = action(client, 1, {"set_metadata": {"metadata": {"rack": None, "availability_zone": "az1"}}}).get_json()
    assert body["aggregate"]["metadata"] == {"ssd": "true", "availability_zone": "az1"}
    assert body["aggregate"]["availability_zone"] == "az1"
    assert zone_of(client, HOST) == "az1"


@pytest.mark.parametrize("metadata", [{"bad key!": "v"}, {"k": "v" * 256}, {"k": 1}, []])
def test_set_metadata__schema(client: FlaskClient, metadata: Any) -> None:
    create(client)
    assert fault(action(client, 1, {"set_metadata": {"metadata": metadata}}))[:2] == ("badRequest", 400)


# ---- the zone rules, with each route's code ----------------------------------------------------------
def test_zone__a_host_in_a_zoned_aggregate_is_in_that_zone_else_nova(client: FlaskClient) -> None:
    assert zone_of(client, HOST) == "nova"
    create(client, "agg1", "az1")
    add_host(client, 1, HOST)
    assert zone_of(client, HOST) == "az1"
    client.put("/v2.1/os-aggregates/1", json={"aggregate": {"availability_zone": "az2"}}, headers=ADMIN)
    assert zone_of(client, HOST) == "az2"
    action(client, 1, {"remove_host": {"host": HOST}})
    assert zone_of(client, HOST) == "nova"


def test_zone__conflicts_are_409_on_add_host_and_400_on_update_and_set_metadata(client: FlaskClient) -> None:
    create(client, "agg1", "az1")
    create(client, "agg2", "az2")
    create(client, "plain")
    add_host(client, 1, HOST)
    assert fault(add_host(client, 2, HOST)) == ("conflictingRequest", 409, "Cannot add host to aggregate 2. Reason: "
                                                "One or more hosts already in availability zone(s) ['az1'].")
    add_host(client, 3, HOST)
    assert fault(client.put("/v2.1/os-aggregates/3", json={"aggregate": {"availability_zone": "az2"}},
                            headers=ADMIN)) == ("badRequest", 400, "Cannot update aggregate 3. Reason: One or more "
                                                "hosts already in availability zone(s) ['az1'].")
    assert fault(action(client, 3, {"set_metadata": {"metadata": {"availability_zone": "az2"}}})) == (
        "badRequest", 400, "Cannot update metadata of aggregate 3. Reason: One or more hosts already in "
                           "availability zone(s) ['az1'].")
    assert fault(action(client, 1, {"set_metadata": {"metadata": {"availability_zone": None}}})) == (
        "badRequest", 400, "Cannot update metadata of aggregate 1. Reason: Aggregate agg1 does not support empty "
                           "named availability zone.")
    assert fault(client.put("/v2.1/os-aggregates/1", json={"aggregate": {"availability_zone": None}},
                            headers=ADMIN))[:2] == ("badRequest", 400)


def test_zone__hosts_with_servers_keep_their_zone(client: FlaskClient, store: Store, active_server: Any) -> None:
    create(client, "agg1", "az1")
    response = add_host(client, 1, HOST)
    assert fault(response)[:2] == ("conflictingRequest", 409)
    assert fault(response)[2].startswith(
        "Cannot add host to aggregate 1. Reason: The host cannot be added to the aggregate as the availability zone "
        "of the host would change from 'None' to 'az1' but the host already has 1 instance(s).")
    create(client, "plain")
    add_host(client, 2, HOST)
    assert fault(client.put("/v2.1/os-aggregates/2", json={"aggregate": {"availability_zone": "az5"}},
                            headers=ADMIN)) == ("badRequest", 400, "Cannot update aggregate 2. Reason: One or more "
                                                "hosts contain instances in this zone.")
    store.release_claim(HOST, active_server.id)
    add_host(client, 1, HOST)
    store.claim_resources(HOST, active_server.id, active_server.flavor)
    removed = action(client, 1, {"remove_host": {"host": HOST}})
    assert fault(removed)[:2] == ("conflictingRequest", 409)
    assert "from 'az1' to 'None'" in fault(removed)[2]
    assert action(client, 2, {"remove_host": {"host": HOST}}).status_code == 200  # no zone: nothing changes
