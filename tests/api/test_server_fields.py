"""Server fields Tempest checks (OS-EXT-AZ while building, server_groups, accessIPv4/6) and the
legacy ``GET /v2[/]`` version document that ``GET /`` advertises."""
from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from compute.store import Store
from tests.api.conftest import ADMIN, OWNER, mv, set_fields


def show(client: FlaskClient, server_id: str, version: str = "2.1", headers: dict[str, str] = OWNER) -> Any:
    response = client.get(f"/v2.1/servers/{server_id}", headers={**headers, **mv(version)})
    assert response.status_code == 200
    return response.get_json()["server"]


def detail(client: FlaskClient, version: str = "2.1") -> list[dict[str, Any]]:
    return client.get("/v2.1/servers/detail", headers={**OWNER, **mv(version)}).get_json()["servers"]


# ---- OS-EXT-AZ:availability_zone -----------------------------------------------------------------------
def test_az__empty_string_while_building_without_a_zone(client: FlaskClient, build_server: Any) -> None:
    assert show(client, build_server.id)["OS-EXT-AZ:availability_zone"] == ""
    assert detail(client)[0]["OS-EXT-AZ:availability_zone"] == ""


def test_az__the_requested_zone_while_building_then_the_hosts(client: FlaskClient, store: Store,
                                                              make_server: Any) -> None:
    aggregate = store.create_aggregate("agg1", "az1")
    store.add_aggregate_host(aggregate.id, "compute-kvm-2")
    server = make_server("zoned", availability_zone="az1")
    assert show(client, server.id)["OS-EXT-AZ:availability_zone"] == "az1"
    set_fields(store, server.id, host="compute-kvm-2", node="compute-kvm-2")
    assert show(client, server.id)["OS-EXT-AZ:availability_zone"] == "az1"
    set_fields(store, server.id, host="compute-kvm-3", node="compute-kvm-3")
    assert show(client, server.id)["OS-EXT-AZ:availability_zone"] == "nova"


# ---- server_groups (2.71): show only -------------------------------------------------------------------
def test_server_groups__in_show_from_271_never_in_the_detail_list(client: FlaskClient, active_server: Any) -> None:
    assert "server_groups" not in show(client, active_server.id, "2.70")
    assert show(client, active_server.id, "2.71")["server_groups"] == []
    assert show(client, active_server.id, "2.100")["server_groups"] == []
    for version in ("2.71", "2.100"):
        assert "server_groups" not in detail(client, version)[0]


# ---- accessIPv4 / accessIPv6 ------------------------------------------------------------------------------
def test_access_ips__always_present_empty_when_unset(client: FlaskClient, active_server: Any) -> None:
    shown = show(client, active_server.id)
    assert (shown["accessIPv4"], shown["accessIPv6"]) == ("", "")


def test_access_ips__stored_on_the_server_and_shown(client: FlaskClient, store: Store, active_server: Any) -> None:
    set_fields(store, active_server.id, access_ip_v4="203.0.113.7", access_ip_v6="2001:db8::7")
    stored = store.get_instance(active_server.id)
    assert (stored.access_ip_v4, stored.access_ip_v6) == ("203.0.113.7", "2001:db8::7")
    for body in (show(client, active_server.id, "2.96"), detail(client, "2.96")[0]):
        assert (body["accessIPv4"], body["accessIPv6"]) == ("203.0.113.7", "2001:db8::7")


# ---- GET /v2 and /v2/ ------------------------------------------------------------------------------------
def test_v2__the_advertised_legacy_document_answers_without_a_token(client: FlaskClient) -> None:
    [advertised] = [v for v in client.get("/").get_json()["versions"] if v["id"] == "v2.0"]
    assert advertised["status"] == "DEPRECATED" and advertised["updated"] == "2025-07-04T12:00:00Z"
    href = advertised["links"][0]["href"]
    assert href == "http://localhost/v2/"
    for path in ("/v2", "/v2/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "OpenStack-API-Version" not in response.headers
        assert response.headers["x-openstack-request-id"].startswith("req-")
        assert response.get_json() == {"version": {
            "id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
            "updated": "2025-07-04T12:00:00Z",
            "links": [{"rel": "self", "href": href},
                      {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}],
        }}


def test_v2__with_a_token_too(client: FlaskClient) -> None:
    assert client.get("/v2/", headers=ADMIN).status_code == 200


def test_volume_v3__stand_in_document_for_the_clients_block_storage_proxy(client: FlaskClient) -> None:
    for path in ("/volume/v3", "/volume/v3/"):
        doc = client.get(path).get_json()["version"]
        assert (doc["id"], doc["status"]) == ("v3.0", "CURRENT")
        assert doc["links"] == [{"rel": "self", "href": "http://localhost/volume/v3/"}]
    assert client.get("/volume/v3/os-availability-zone").status_code == 404
