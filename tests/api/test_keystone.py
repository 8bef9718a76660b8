"""auth_strategy = keystone: keystonemiddleware validates the token (its own AuthTokenFixture here)."""
from __future__ import annotations

from typing import Any

import pytest
from keystonemiddleware.fixture import AuthTokenFixture

from api.app import create_app
from compute.settings import ApiOptions
from tests.api.conftest import IMAGE_ID, fault

KEYSTONE_URI = "http://keystone.example.org/identity"


class ApiOptionsWithKeystone(ApiOptions):
    keystone_authtoken: dict[str, Any] = {}


@pytest.fixture
def tokens():
    fixture = AuthTokenFixture()
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


@pytest.fixture
def keystone_client(settings, service, tokens):
    options = {**settings.api.model_dump(), "auth_strategy": "keystone",
               "keystone_authtoken": {"www_authenticate_uri": KEYSTONE_URI}}
    api = ApiOptionsWithKeystone(**options)
    keystone_settings = settings.model_copy(update={"api": api})
    return create_app(keystone_settings, service).test_client()


def token(tokens, *, user: str, project: str, roles: list[str]) -> dict[str, str]:
    token_id = f"tok-{user}-{project}"
    tokens.add_token_data(token_id=token_id, user_id=user, user_name=user, project_id=project,
                          project_name=project, role_list=roles)
    return {"X-Auth-Token": token_id}


def test_keystone__valid_member_token_creates_a_server_as_that_user(keystone_client, tokens, store):
    headers = token(tokens, user="u-123", project="p-456", roles=["member", "reader"])
    response = keystone_client.post("/v2.1/servers", headers=headers,
                                    json={"server": {"name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1"}})
    assert response.status_code == 202
    instance = store.get_instance(response.get_json()["server"]["id"])
    assert (instance.user_id, instance.project_id) == ("u-123", "p-456")
    (action,) = store.list_actions(instance.id)
    assert action.request_id == response.headers["x-openstack-request-id"]


def test_keystone__admin_role_passes_admin_policies(keystone_client, tokens):
    admin = token(tokens, user="boss", project="ops", roles=["admin", "member"])
    member = token(tokens, user="joe", project="ops", roles=["member"])
    assert keystone_client.get("/v2.1/os-services", headers=admin).status_code == 200
    response = keystone_client.get("/v2.1/os-services", headers=member)
    assert fault(response) == ("forbidden", 403, "Policy doesn't allow os_compute_api:os-services:list "
                                                 "to be performed.")


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": "not-a-known-token"}, {"X-Auth-Token": "admin:admin"}])
def test_keystone__missing_or_invalid_token_is_401_with_www_authenticate(keystone_client, headers):
    response = keystone_client.get("/v2.1/servers", headers=headers)
    assert response.status_code == 401
    assert fault(response) == ("unauthorized", 401, "The request you have made requires authentication.")
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{KEYSTONE_URI}"'


def test_keystone__spoofed_identity_headers_are_ignored(keystone_client):
    response = keystone_client.get("/v2.1/os-services", headers={
        "X-Identity-Status": "Confirmed", "X-User-Id": "admin", "X-Project-Id": "admin", "X-Roles": "admin"})
    assert response.status_code == 401


def test_keystone__version_documents_stay_public(keystone_client):
    for path in ("/", "/v2.1", "/v2.1/", "/identity/v3"):
        assert keystone_client.get(path).status_code == 200, path
