"""Version discovery documents: public, not microversioned, with the fields clients need."""
from __future__ import annotations

from tests.api.conftest import mv


def test_root__lists_v20_and_v21_without_a_token(client):
    response = client.get("/")
    assert response.status_code == 200
    versions = response.get_json()["versions"]
    assert [v["id"] for v in versions] == ["v2.0", "v2.1"]
    v20, v21 = versions
    assert v20 == {
        "id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
        "updated": "2025-07-04T12:00:00Z", "links": [{"rel": "self", "href": "http://localhost/v2/"}],
    }
    assert v21["status"] == "CURRENT"
    assert v21["version"] == "2.104"
    assert v21["min_version"] == "2.1"
    assert v21["links"] == [{"rel": "self", "href": "http://localhost/v2.1/"}]
    assert "media-types" not in v21


def test_v21_document__answers_with_and_without_trailing_slash(client):
    for path in ("/v2.1", "/v2.1/"):
        response = client.get(path)
        assert response.status_code == 200, path
        doc = response.get_json()["version"]
        assert doc["id"] == "v2.1"
        assert doc["version"] == "2.104"
        assert doc["min_version"] == "2.1"
        assert doc["updated"] == "2013-07-23T11:33:21Z"
        assert doc["media-types"] == [{"base": "application/json",
                                       "type": "application/vnd.openstack.compute+json;version=2.1"}]
        assert doc["links"][0] == {"rel": "self", "href": "http://localhost/v2.1/"}
        assert doc["links"][1]["rel"] == "describedby"


def test_version_documents__carry_no_version_headers_even_when_asked(client):
    response = client.get("/v2.1/", headers=mv("2.50"))
    assert response.status_code == 200
    assert "OpenStack-API-Version" not in response.headers
    assert "X-OpenStack-Nova-API-Version" not in response.headers
    assert response.headers["x-openstack-request-id"].startswith("req-")


def test_version_documents__ignore_a_malformed_version_header(client):
    assert client.get("/v2.1/", headers=mv("bogus")).status_code == 200


def test_version_documents__use_public_endpoint_when_set(make_app):
    client = make_app(api={"public_endpoint": "https://compute.example.org:8774/v2.1/"}).test_client()
    doc = client.get("/v2.1").get_json()["version"]
    assert doc["links"][0]["href"] == "https://compute.example.org:8774/v2.1/"
    root = client.get("/").get_json()["versions"]
    assert root[0]["links"][0]["href"] == "https://compute.example.org:8774/v2/"


def test_identity_v3_document__is_public_and_self_linked(client):
    for path in ("/identity/v3", "/identity/v3/"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.get_json() == {"version": {
            "id": "v3.14", "status": "stable",
            "links": [{"rel": "self", "href": "http://localhost/identity/v3/"}],
        }}
