"""Nothing a client sends may produce a 500: odd ids, odd queries, odd bodies on every route."""
from __future__ import annotations

import itertools
import json

import pytest
from flask.testing import FlaskClient

from compute.models import Instance
from tests.api.conftest import ADMIN, DEST, OWNER, UNKNOWN_ID, mv, post_action

LATEST = "2.104"

ODD_IDS = ["x", "1", "-1", "²", "1²", "00000000-0000-4000-8000-000000000000", "%00", "a:b", "instances", "..",
           "req-x", "é", "9" * 400, "{id}", "%2F"]

ODD_QUERIES = ["", "?limit=-1", "?limit=²", "?minRam=²", "?minDisk=³", "?marker=²", "?limit=99999999999999999999",
               "?limit=", "?marker=", "?marker=x",
               "?changes-since=", "?changes-since=2030-13-45T99:99:99", "?changes-before=x", "?name=(",
               "?name=%00", "?status=", "?all_tenants=", "?all_tenants=nah", "?deleted=maybe", "?minRam=-1",
               "?minDisk=1.5", "?is_public=", "?with_servers=nope", "?hypervisor_hostname_pattern=",
               "?id=in:", "?host=&binary=", "?limit=1&limit=2", "?server=", "?type="]

GET_ROUTES = ["/v2.1/servers", "/v2.1/servers/detail", "/v2.1/servers/{id}", "/v2.1/servers/{id}/os-instance-actions",
              "/v2.1/servers/{id}/os-instance-actions/{id}", "/v2.1/os-hypervisors", "/v2.1/os-hypervisors/detail",
              "/v2.1/os-hypervisors/{id}", "/v2.1/os-hypervisors/{id}/search", "/v2.1/os-hypervisors/{id}/servers",
              "/v2.1/os-hypervisors/statistics", "/v2.1/os-services", "/v2.1/flavors", "/v2.1/flavors/detail",
              "/v2.1/flavors/{id}", "/v2.1/images", "/v2.1/images/detail", "/v2.1/images/{id}"]

ODD_BODIES = [None, 0, 1.5, True, "s", [], [1], {}, {"a": None}, {"os-resetState": []},
              {"os-resetState": {"state": None}}, {"os-resetState": {"state": ["active"]}},
              {"changePassword": "pw"}, {"changePassword": {"adminPass": {"x": 1}}},
              {"changePassword": {"adminPass": "x" * 10000}}, {"injectNetworkInfo": {"a": [{}]}},
              {"resetNetwork": 1}, {"server": None}, {"server": []}, {"server": {"name": None, "flavorRef": None}},
              {"server": {"name": "a" * 300, "flavorRef": "1"}}, {"server": {"name": "x", "flavorRef": []}},
              {"server": {"name": "x", "flavorRef": "1", "networks": [None]}},
              {"server": {"name": "x", "flavorRef": "1", "metadata": {"": "v"}}},
              {"server": {"name": "x", "flavorRef": "1", "metadata": []}},
              {"server": {"name": "x", "flavorRef": "1", "min_count": "1a"}},
              {"server": {"name": "x", "flavorRef": "1", "max_count": True}},
              {"server": {"name": "x", "flavorRef": "1", "availability_zone": ":"}},
              {"server": {"name": "x", "flavorRef": "1", "availability_zone": "::::"}},
              {"server": {"name": "x\u0000", "flavorRef": "1"}},
              {"server": {"name": "x", "flavorRef": "1", "imageRef": 5}},
              {"server": {"name": "x", "flavorRef": 10 ** 30}},
              {"server": {"name": "x", "flavorRef": "1", "security_groups": [{"id": "sg"}]}},
              {"server": {"name": "x", "flavorRef": "1", "security_groups": [None, "default"]}},
              {"server": {"name": "x", "flavorRef": "1", "min_count": "²"}},
              {"server": {"name": "x", "flavorRef": "1", "tags": ["a"] * 60}},
              {"os-resetState": {"state": "active"}, "x": 1}]


@pytest.mark.parametrize("route", GET_ROUTES)
def test_get_routes__odd_ids_never_500(client, active_server, route):
    for odd_id, version in itertools.product(ODD_IDS, ("2.1", "2.53")):
        response = client.get(route.replace("{id}", odd_id), headers={**ADMIN, **mv(version)})
        assert response.status_code < 500, (odd_id, version, response.get_data(as_text=True))


@pytest.mark.parametrize("route", GET_ROUTES)
def test_get_routes__odd_queries_never_500(client, active_server, route):
    for query, version in itertools.product(ODD_QUERIES, ("2.1", "2.58", "2.104")):
        path = route.replace("{id}", active_server.id) + query
        response = client.get(path, headers={**ADMIN, **mv(version)})
        assert response.status_code < 500, (query, version, response.get_data(as_text=True))


@pytest.mark.parametrize("path", ["/v2.1/servers/{id}/action", "/v2.1/servers"])
def test_post_routes__odd_bodies_never_500(client, active_server, path):
    for body, headers in itertools.product(ODD_BODIES, (ADMIN, OWNER)):
        response = client.post(path.replace("{id}", active_server.id), json=body, headers=headers)
        assert response.status_code < 500, (body, response.get_data(as_text=True))


@pytest.mark.parametrize("header", ["compute", "compute ", "compute 2.1.1", "compute 99999999999999999999.1",
                                    "compute 2.99999999999999999999", ",,,", "compute\t2.1", "compute latest extra"])
def test_version_headers__odd_values_never_500(client, header):
    response = client.get("/v2.1/flavors", headers={**ADMIN, "OpenStack-API-Version": header})
    assert response.status_code in (200, 400, 406)


@pytest.mark.parametrize("token", ["::::", ":", "a:", ":b", "x" * 5000, "admin:admin:extra"])
def test_tokens__odd_values_never_500(client, token):
    assert client.get("/v2.1/servers", headers={"X-Auth-Token": token}).status_code < 500


def test_methods__odd_methods_never_500(client, active_server):
    for method in ("put", "patch", "delete", "options", "head"):
        response = getattr(client, method)("/v2.1/servers/detail", headers=ADMIN)
        assert response.status_code < 500
    assert client.post(f"/v2.1/servers/{active_server.id}", headers=ADMIN).status_code == 405


@pytest.mark.parametrize("path, version", [
    ("/v2.1/servers/{server}/os-instance-actions?changes-since={when}", "2.66"),
    ("/v2.1/servers/{server}/os-instance-actions?changes-before={when}", "2.66"),
    ("/v2.1/os-migrations?changes-since={when}", "2.66"),
    ("/v2.1/servers/detail?changes-since={when}", "2.1"),
    ("/v2.1/images/detail?changes-since={when}", "2.1"),
])
@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00%2B01:00"])
def test_timestamps__out_of_range_after_utc_conversion_are_400(client, active_server, path, version, when):
    response = client.get(path.format(server=active_server.id, when=when),
                          headers={**ADMIN, "OpenStack-API-Version": f"compute {version}"})
    assert response.status_code == 400, response.get_data(as_text=True)


@pytest.mark.parametrize("body", [
    {"createBackup": {"name": "b", "backup_type": "\ud800", "rotation": 1}},
    {"changePassword": {"adminPass": "\ud800"}},
])
def test_bodies__a_lone_surrogate_is_400_and_changes_nothing(client, store, active_server, body):
    raw = json.dumps(body)  # ensure_ascii keeps "\ud800" as JSON text, as a client could send it
    response = client.post(f"/v2.1/servers/{active_server.id}/action", data=raw,
                           headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert store.get_instance(active_server.id).task_state is None


# ---- migrate, confirmResize and revertResize -------------------------------------------------------
ODD_VALUES = [None, 0, -1, 1.5, True, "", "x", [], [None], {}, {"host": None}, {"host": 0}, {"host": []},
              {"host": {"a": 1}}, {"host": "\u0000"}, {"host": "é"}, {"host": "x" * 10000}, {"": None},
              {"host": DEST, "x": 1}]


@pytest.mark.parametrize("key", ["migrate", "confirmResize", "revertResize"])
def test_odd_bodies_never_500(client: FlaskClient, active_server: Instance, resized_server: Instance,
                              key: str) -> None:
    for value, version, caller in itertools.product(ODD_VALUES, ("2.1", "2.56", LATEST), (ADMIN, OWNER)):
        for server_id in (active_server.id, UNKNOWN_ID, "x"):
            response = post_action(client, server_id, {key: value}, {**caller, **mv(version)})
            assert response.status_code < 500, (key, value, version, response.get_data(as_text=True))
