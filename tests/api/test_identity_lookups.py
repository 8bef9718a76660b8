"""The dev identity v3: version documents, tokens with a catalog, project and user lookups from the store."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.models import Image
from tests.api.conftest import ADMIN, OTHER, OWNER, cold_record

V3 = "/identity/v3"


def keystone_error(response):
    body = response.get_json()
    assert set(body) == {"error"}, body
    return response.status_code, body["error"]["message"]


def names(response, collection):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["name"] for item in response.get_json()[collection]]


def token_request(identity, scope=None):
    auth = {"identity": identity}
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


def by_token(token):
    return {"methods": ["token"], "token": {"id": token}}


# ---- version documents ------------------------------------------------------------------------------------
def test_versions__v3_document_and_the_unversioned_list(client):
    v3 = client.get(V3).get_json()["version"]
    assert v3["id"] == "v3.14" and v3["links"][0]["href"] == "http://localhost/identity/v3/"
    root = client.get("/identity")
    assert root.status_code == 300 and root.get_json()["versions"]["values"][0]["id"] == "v3.14"


# ---- tokens ----------------------------------------------------------------------------------------------
def test_token__by_token_scoped_to_a_project_by_name(client):
    response = client.post(f"{V3}/auth/tokens", json=token_request(
        by_token("admin:admin"), {"project": {"name": "demo", "domain": {"id": "default"}}}))
    assert response.status_code == 201
    assert response.headers["X-Subject-Token"] == "admin:demo"
    token = response.get_json()["token"]
    assert token["user"]["id"] == "admin" and token["project"]["id"] == "demo"
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    catalog = {s["type"]: s["endpoints"] for s in token["catalog"]}
    assert catalog["compute"][0]["url"] == "http://localhost/v2.1"
    assert catalog["image"][0]["url"] == "http://localhost/image"
    assert catalog["identity"][0]["url"] == "http://localhost/identity"
    assert {e["interface"] for e in catalog["image"]} == {"public", "internal", "admin"}


def test_token__by_password_defaults_to_the_users_project(client):
    response = client.post(f"{V3}/auth/tokens", json=token_request(
        {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"name": "Default"},
                                                        "password": "anything"}}}))
    assert response.status_code == 201 and response.headers["X-Subject-Token"] == "demo:demo"
    assert [r["name"] for r in response.get_json()["token"]["roles"]] == ["member", "reader"]


def test_token__the_issued_token_is_accepted_by_compute_and_images(client):
    token = client.post(f"{V3}/auth/tokens", json=token_request(by_token("alice:demo"))).headers["X-Subject-Token"]
    assert token == "alice:demo"
    assert client.get("/v2.1/servers", headers={"X-Auth-Token": token}).status_code == 200
    assert client.get("/image/v2/images", headers={"X-Auth-Token": token}).status_code == 200


@pytest.mark.parametrize("body, code", [
    (None, 400), ({"auth": {}}, 400), (token_request({"methods": []}), 400),
    (token_request(by_token("")), 401), (token_request({"methods": ["totp"]}), 401),
    (token_request(by_token("admin:admin"), {"system": {"all": True}}), 401),
    (token_request(by_token("admin:admin"), {"project": {"domain": {"id": "default"}}}), 400),
])
def test_token__refused(client, body, code):
    assert client.post(f"{V3}/auth/tokens", json=body).status_code == code


def test_token__validate(client):
    response = client.get(f"{V3}/auth/tokens", headers={**ADMIN, "X-Subject-Token": "bob:other"})
    assert response.status_code == 200 and response.get_json()["token"]["project"]["id"] == "other"
    assert client.get(f"{V3}/auth/tokens", headers=ADMIN).status_code == 404
    assert client.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": "bob:other"}).status_code == 401


def test_token__not_served_in_keystone_mode(make_app):
    app = make_app(api={"auth_strategy": "keystone", "keystone_authtoken": {"auth_url": "http://127.0.0.1:9"}})
    assert app.test_client().post(f"{V3}/auth/tokens", json=token_request(by_token("admin:admin"))).status_code == 404


# ---- projects and users --------------------------------------------------------------------------------------
@pytest.fixture
def records(store, make_server):
    """A server of alice in demo; a migration of carol in ops; an image owned by shop."""
    server = make_server("vm")
    cold_record(store, server.id, user_id="carol", project_id="ops")
    store.put_image(Image(name="img", owner="shop", properties={"user_id": "dave"}))
    return server


def test_projects__from_the_records_plus_admin_and_demo(client, records):
    assert names(client.get(f"{V3}/projects", headers=ADMIN), "projects") == ["admin", "demo", "ops", "shop"]
    assert names(client.get(f"{V3}/projects?name=ops", headers=ADMIN), "projects") == ["ops"]
    assert names(client.get(f"{V3}/projects?name=nope", headers=ADMIN), "projects") == []
    assert names(client.get(f"{V3}/projects?domain_id=other", headers=ADMIN), "projects") == []


def test_projects__show_by_id(client, records):
    project = client.get(f"{V3}/projects/ops", headers=ADMIN).get_json()["project"]
    assert (project["id"], project["name"], project["domain_id"], project["enabled"]) == ("ops", "ops", "default", True)
    assert keystone_error(client.get(f"{V3}/projects/nope", headers=ADMIN)) == (404, "Could not find project: nope.")


def test_users__from_the_records_plus_admin_and_demo(client, records):
    assert names(client.get(f"{V3}/users", headers=ADMIN), "users") == ["admin", "alice", "carol", "dave", "demo"]
    assert names(client.get(f"{V3}/users?name=carol", headers=ADMIN), "users") == ["carol"]
    assert client.get(f"{V3}/users/alice", headers=ADMIN).get_json()["user"]["domain_id"] == "default"
    assert keystone_error(client.get(f"{V3}/users/zed", headers=ADMIN)) == (404, "Could not find user: zed.")


def test_lookups__members_see_their_own_only(client, records):
    assert keystone_error(client.get(f"{V3}/projects", headers=OWNER)) == (
        403, "You are not authorized to perform the requested action: identity:list_projects.")
    assert client.get(f"{V3}/users", headers=OWNER).status_code == 403
    assert client.get(f"{V3}/projects/demo", headers=OWNER).status_code == 200
    assert client.get(f"{V3}/projects/ops", headers=OWNER).status_code == 403
    assert client.get(f"{V3}/users/alice", headers=OWNER).status_code == 200
    assert client.get(f"{V3}/users/carol", headers=OWNER).status_code == 403
    assert client.get(f"{V3}/projects/other", headers=OTHER).status_code == 200  # the caller's own project
    assert client.get(f"{V3}/projects").status_code == 401


def test_auth_projects__the_callers(client, records):
    assert names(client.get(f"{V3}/auth/projects", headers=OWNER), "projects") == ["demo"]
    assert names(client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": "carol:ops"}), "projects") == ["ops"]
    assert names(client.get(f"{V3}/auth/projects", headers=ADMIN), "projects") == ["admin", "demo", "ops", "shop"]


def test_domains__the_default_one(client):
    assert names(client.get(f"{V3}/domains", headers=ADMIN), "domains") == ["Default"]
    assert client.get(f"{V3}/domains/default", headers=ADMIN).get_json()["domain"]["id"] == "default"
    assert client.get(f"{V3}/domains/other", headers=ADMIN).status_code == 404


ODD = ["", ":", "a:b", "admin", "demo", "x" * 300, "\u0000", "é", "€", "a\nb", "a\rb", 0, None, True, [], {}]
NODES = st.recursive(st.sampled_from(ODD), lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
    st.sampled_from(["auth", "identity", "methods", "token", "id", "password", "user", "name", "scope", "project",
                     "domain", "system"]), kids, max_size=4), max_leaves=10)


TEXT = st.sampled_from([v for v in ODD if isinstance(v, str)]) | st.text(max_size=5)
IDENTITIES = st.builds(lambda t: {"methods": ["token"], "token": {"id": t}}, TEXT) | st.builds(
    lambda n: {"methods": ["password"], "password": {"user": {"name": n, "password": "p"}}}, TEXT)
SCOPES = st.none() | NODES | st.builds(lambda n: {"project": {"name": n}}, TEXT)


@settings(derandomize=True, database=None, deadline=None, max_examples=300,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=NODES | st.builds(lambda i, s: {"auth": {"identity": i, "scope": s}}, NODES | IDENTITIES, SCOPES),
       subject=TEXT)
def test_fuzz__token_requests_never_5xx(client, body, subject):
    response = client.post(f"{V3}/auth/tokens", json=body)
    assert response.status_code in (201, 400, 401), (body, response.get_data(as_text=True)[:300])
    if response.status_code == 201:
        assert client.get("/v2.1/servers", headers={"X-Auth-Token": response.headers["X-Subject-Token"]}).status_code == 200
    if subject.isprintable() and subject.isascii():  # what an HTTP client can send
        response = client.get(f"{V3}/auth/tokens", headers={**ADMIN, "X-Subject-Token": subject})
        assert response.status_code in (200, 404), (subject, response.get_data(as_text=True)[:300])
