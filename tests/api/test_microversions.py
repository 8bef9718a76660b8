"""Microversion negotiation and the version headers on every microversioned response."""
from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers

from api.errors import ApiError
from api.microversions import MAX_VERSION, APIVersion, negotiate
from tests.api.conftest import ADMIN, OWNER, UNKNOWN_ID, fault, mv


@pytest.mark.parametrize("given, expected", [
    ({}, (2, 1)),
    ({"X-OpenStack-Nova-API-Version": "2.47"}, (2, 47)),
    ({"OpenStack-API-Version": "compute 2.60"}, (2, 60)),
    ({"OpenStack-API-Version": "compute 2.60", "X-OpenStack-Nova-API-Version": "2.10"}, (2, 60)),
    ({"OpenStack-API-Version": "image 2.5", "X-OpenStack-Nova-API-Version": "2.10"}, (2, 10)),
    ({"OpenStack-API-Version": "image 2.5, compute 2.33"}, (2, 33)),
    ({"OpenStack-API-Version": "compute latest"}, (2, 104)),
    ({"X-OpenStack-Nova-API-Version": "latest"}, (2, 104)),
    ({"OpenStack-API-Version": "COMPUTE 2.2"}, (2, 2)),
])
def test_negotiate__reads_the_headers_like_nova(app, given, expected):
    with app.test_request_context():
        assert negotiate(Headers(list(given.items()))) == expected


@pytest.mark.parametrize("text", ["2", "2.", "abc", "2.01", "02.1", "2.1.1", "", "v2.1", "2.-1"])
def test_negotiate__malformed_is_400_with_novas_message(app, text):
    with app.test_request_context(), pytest.raises(ApiError) as caught:
        negotiate(Headers([("X-OpenStack-Nova-API-Version", text)]))
    assert caught.value.code == 400
    assert caught.value.message == (f"API Version String {text} is of invalid format. "
                                    "Must be of format MajorNum.MinorNum.")


@pytest.mark.parametrize("text", ["2.0", "1.1", "2.105", "3.0"])
def test_negotiate__out_of_range_is_406(app, text):
    with app.test_request_context(), pytest.raises(ApiError) as caught:
        negotiate(Headers([("X-OpenStack-Nova-API-Version", text)]))
    assert caught.value.code == 406
    assert caught.value.message == (f"Version {text} is not supported by the API. "
                                    "Minimum is 2.1 and maximum is 2.104.")


def test_api_version__compares_with_tuples():
    version = APIVersion.parse("2.47")
    assert version >= (2, 47) and version < (2, 48) and version > (2, 9)
    assert str(version) == "2.47"
    assert str(MAX_VERSION) == "2.104"


def test_request__without_version_headers_is_served_as_21(client):
    response = client.get("/v2.1/flavors", headers=ADMIN)
    assert response.status_code == 200
    assert response.headers["OpenStack-API-Version"] == "compute 2.1"
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.1"


def test_request__stamps_version_and_vary_headers(client):
    response = client.get("/v2.1/flavors", headers={**ADMIN, **mv("2.61")})
    assert response.headers["OpenStack-API-Version"] == "compute 2.61"
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.61"
    vary = {v.strip() for v in response.headers["Vary"].split(",")}
    assert vary == {"OpenStack-API-Version", "X-OpenStack-Nova-API-Version"}


def test_request__new_header_wins_over_legacy(client):
    response = client.get("/v2.1/flavors", headers={
        **ADMIN, "OpenStack-API-Version": "compute 2.55", "X-OpenStack-Nova-API-Version": "2.20"})
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.55"
    assert "description" in response.get_json()["flavors"][0]


def test_request__legacy_header_alone_is_honoured(client):
    response = client.get("/v2.1/flavors", headers={**ADMIN, "X-OpenStack-Nova-API-Version": "2.55"})
    assert response.headers["OpenStack-API-Version"] == "compute 2.55"


def test_request__latest_is_the_maximum(client):
    response = client.get("/v2.1/flavors", headers={**ADMIN, **mv("latest")})
    assert response.headers["OpenStack-API-Version"] == "compute 2.104"


def test_request__malformed_version_is_400_bad_request(client):
    response = client.get("/v2.1/flavors", headers={**ADMIN, **mv("2.x")})
    assert response.status_code == 400
    assert fault(response) == ("badRequest", 400, "API Version String 2.x is of invalid format. "
                                                  "Must be of format MajorNum.MinorNum.")
    assert "OpenStack-API-Version" not in response.headers


def test_request__unsupported_version_is_406_compute_fault(client):
    response = client.get("/v2.1/flavors", headers={**ADMIN, **mv("2.200")})
    assert response.status_code == 406
    assert fault(response) == ("computeFault", 406, "Version 2.200 is not supported by the API. "
                                                    "Minimum is 2.1 and maximum is 2.104.")
    assert response.headers["OpenStack-API-Version"] == "compute 2.200"


@pytest.mark.parametrize("method, path, body, code", [
    ("get", f"/v2.1/servers/{UNKNOWN_ID}", None, 404),
    ("post", f"/v2.1/servers/{UNKNOWN_ID}/action", {"nope": None}, 400),
    ("get", "/v2.1/no-such-route", None, 404),
    ("put", "/v2.1/flavors", None, 405),
    ("get", "/v2.1/os-hypervisors", None, 403),
])
def test_faults__carry_version_and_request_id_headers(client, method, path, body, code):
    token = OWNER if code == 403 else ADMIN
    response = getattr(client, method)(path, json=body, headers={**token, **mv("2.30")})
    assert response.status_code == code
    assert response.headers["OpenStack-API-Version"] == "compute 2.30"
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.30"
    assert "OpenStack-API-Version" in response.headers["Vary"]
    assert response.headers["x-openstack-request-id"].startswith("req-")


def test_microversion_gated_route__is_404_outside_its_range(client):
    assert client.get("/v2.1/os-hypervisors/statistics", headers={**ADMIN, **mv("2.87")}).status_code == 200
    response = client.get("/v2.1/os-hypervisors/statistics", headers={**ADMIN, **mv("2.88")})
    assert response.status_code == 404
    assert fault(response) == ("itemNotFound", 404, "The resource could not be found.")
