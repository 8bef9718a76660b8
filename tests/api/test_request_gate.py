"""What every request goes through: request ids, authentication, body checks, fault rendering."""
from __future__ import annotations

import io
import json

import pytest

from api.errors import FAULT_NAMES, fault_name
from compute import errors
from tests.api.conftest import ADMIN, IMAGE_ID, OWNER, UNKNOWN_ID, fault, post_action


def test_request_id__on_every_response_and_both_headers_agree(client):
    for path, headers in (("/", {}), ("/v2.1/flavors", ADMIN), ("/v2.1/nope", ADMIN), ("/v2.1/flavors", {})):
        response = client.get(path, headers=headers)
        request_id = response.headers["x-openstack-request-id"]
        assert request_id.startswith("req-") and len(request_id) == 40
        assert response.headers["x-compute-request-id"] == request_id


def test_request_id__differs_per_request(client):
    first = client.get("/").headers["x-openstack-request-id"]
    assert client.get("/").headers["x-openstack-request-id"] != first


def test_request_id__is_the_request_id_of_the_action_the_call_created(client, store):
    response = client.post("/v2.1/servers", json={"server": {"name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1"}},
                           headers=OWNER)
    assert response.status_code == 202
    server_id = response.get_json()["server"]["id"]
    (action,) = store.list_actions(server_id)
    assert action.action == "create"
    assert action.request_id == response.headers["x-openstack-request-id"]


def test_request_id__a_client_supplied_one_is_not_echoed(client):
    supplied = "req-11111111-1111-4111-8111-111111111111"
    response = client.get("/v2.1/flavors", headers={**ADMIN, "X-OpenStack-Request-Id": supplied})
    assert response.headers["x-openstack-request-id"] != supplied


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": ""}, {"X-Auth-Token": "   "}])
def test_auth__api_route_without_token_is_401(client, headers):
    response = client.get("/v2.1/servers", headers=headers)
    assert response.status_code == 401
    assert fault(response) == ("unauthorized", 401, "The request you have made requires authentication.")
    assert response.headers["x-openstack-request-id"].startswith("req-")


def test_auth__unknown_api_route_without_token_is_401_not_404(client):
    assert client.get("/v2.1/whatever").status_code == 401


def test_auth__unknown_path_outside_the_api_is_404(client):
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert fault(response)[0] == "itemNotFound"


def test_auth__token_without_colon_is_user_and_project(client, store):
    response = client.post("/v2.1/servers", json={"server": {"name": "vm", "flavorRef": "1"}},
                           headers={"X-Auth-Token": "solo"})
    assert response.status_code == 202
    instance = store.get_instance(response.get_json()["server"]["id"])
    assert (instance.user_id, instance.project_id) == ("solo", "solo")


def test_auth__only_the_admin_user_is_admin(client):
    assert client.get("/v2.1/os-services", headers={"X-Auth-Token": "admin:demo"}).status_code == 200
    assert client.get("/v2.1/os-services", headers={"X-Auth-Token": "administrator:admin"}).status_code == 403


@pytest.mark.parametrize("content_type", ["text/xml", "application/x-www-form-urlencoded", "application/xml"])
def test_body__unsupported_content_type_is_415(client, active_server, content_type):
    response = client.post(f"/v2.1/servers/{active_server.id}/action", data=b'{"injectNetworkInfo": null}',
                           headers={**ADMIN, "Content-Type": content_type})
    assert response.status_code == 415
    assert fault(response) == ("badMediaType", 415, "Unsupported Content-Type")


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=UTF-8", "application/vnd.openstack.compute+json",
    "text/plain", None])
def test_body__json_content_types_and_missing_type_are_accepted(client, active_server, content_type):
    headers = dict(ADMIN)
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(f"/v2.1/servers/{active_server.id}/action", data=b'{"injectNetworkInfo": null}',
                           headers=headers)
    assert response.status_code == 202


def test_body__over_max_body_bytes_is_413(make_app, active_server):
    client = make_app(api={"max_body_bytes": 100}).test_client()
    body = {"changePassword": {"adminPass": "x" * 200}}
    response = post_action(client, active_server.id, body)
    assert response.status_code == 413
    assert fault(response) == ("overLimit", 413, "Request is too large.")


def test_body__over_max_body_bytes_without_content_length_is_413(make_app, active_server):
    client = make_app(api={"max_body_bytes": 100}).test_client()

    stream = io.BytesIO(json.dumps({"changePassword": {"adminPass": "x" * 200}}).encode())
    response = client.post(f"/v2.1/servers/{active_server.id}/action", input_stream=stream,
                           headers={**ADMIN, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert fault(response)[0] == "overLimit"


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe", b"[" * 100000, b'{"a": 1} trailing'])
def test_body__malformed_json_is_400(client, active_server, raw):
    response = client.post(f"/v2.1/servers/{active_server.id}/action", data=raw,
                           headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert fault(response) == ("badRequest", 400, "Malformed request body")


@pytest.mark.parametrize("accept", ["", "*/*", "application/json", "text/html"])
def test_accept__never_406(client, active_server, accept):
    response = client.post(f"/v2.1/servers/{active_server.id}/action", json={"injectNetworkInfo": None},
                           headers={**ADMIN, "Accept": accept})
    assert response.status_code == 202
    assert client.get("/v2.1/flavors", headers={**ADMIN, "Accept": accept}).status_code == 200


def test_action__unknown_key_is_400_before_the_server_lookup(client):
    response = post_action(client, UNKNOWN_ID, {"fly": None})
    assert response.status_code == 400
    assert fault(response) == ("badRequest", 400, "There is no such action: fly")


@pytest.mark.parametrize("body", [{}, {"os-resetState": {"state": "active"}, "injectNetworkInfo": None}, [], "x", 3])
def test_action__body_must_have_exactly_one_key(client, active_server, body):
    response = post_action(client, active_server.id, body)
    assert response.status_code == 400
    assert fault(response) == ("badRequest", 400, "Malformed request body")


def test_action__empty_body_is_malformed(client, active_server):
    response = client.post(f"/v2.1/servers/{active_server.id}/action", headers=ADMIN)
    assert fault(response) == ("badRequest", 400, "Malformed request body")


def test_routing__unknown_route_is_nova_404(client):
    response = client.get("/v2.1/servers/x/y/z", headers=ADMIN)
    assert response.status_code == 404
    assert fault(response) == ("itemNotFound", 404, "The resource could not be found.")


def test_routing__wrong_method_is_405_bad_method(client):
    response = client.delete("/v2.1/flavors", headers=ADMIN)
    assert response.status_code == 405
    assert fault(response) == ("badMethod", 405, "The method DELETE is not allowed for this resource.")
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize("code, key", [
    (400, "badRequest"), (401, "unauthorized"), (403, "forbidden"), (404, "itemNotFound"),
    (405, "badMethod"), (409, "conflictingRequest"), (413, "overLimit"), (415, "badMediaType"),
    (429, "overLimit"), (501, "notImplemented"), (503, "serviceUnavailable"),
    (406, "computeFault"), (410, "computeFault"), (500, "computeFault"), (502, "computeFault"),
])
def test_fault_name__nova_table(code, key):
    assert fault_name(code) == key


def test_fault_name__table_has_exactly_novas_named_codes():
    assert set(FAULT_NAMES) == {400, 401, 403, 404, 405, 409, 413, 415, 429, 501, 503}


@pytest.mark.parametrize("exc, code, key", [
    (errors.InstanceNotFound("x"), 404, "itemNotFound"),
    (errors.NotFound("gone"), 404, "itemNotFound"),
    (errors.Invalid("bad"), 400, "badRequest"),
    (errors.NoValidHost("none"), 400, "badRequest"),
    (errors.Conflict("busy"), 409, "conflictingRequest"),
    (errors.InstanceInvalidState("a", "b", "vm_state", "x"), 409, "conflictingRequest"),
    (errors.InstanceIsLocked("x"), 409, "conflictingRequest"),
    (errors.InstanceNotReady("not ready"), 409, "conflictingRequest"),
    (errors.QueueUnavailable("broker down"), 503, "serviceUnavailable"),
    (errors.DriverError("boom"), 500, "computeFault"),
])
def test_domain_errors__map_to_one_code_each(client, service, monkeypatch, exc, code, key):
    def raising(*args, **kwargs):
        raise exc

    monkeypatch.setattr(service, "list_flavors", raising)
    response = client.get("/v2.1/flavors", headers=ADMIN)
    assert response.status_code == code
    got_key, got_code, message = fault(response)
    assert (got_key, got_code) == (key, code)
    if code != 500:
        assert message == exc.message


def test_unexpected_exception__is_500_compute_fault_and_logged(client, service, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "list_flavors", explode)
    response = client.get("/v2.1/flavors", headers=ADMIN)
    assert response.status_code == 500
    assert fault(response) == ("computeFault", 500, "Unexpected API Error. Please contact the administrator")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "secret internals" in caplog.text
    assert response.headers["OpenStack-API-Version"] == "compute 2.1"
