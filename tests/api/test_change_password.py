"""changePassword: schema, policy, ACTIVE-only, lock, and the queued action."""
from __future__ import annotations

import pytest

from tests.api.conftest import (
    ADMIN,
    OTHER,
    OWNER,
    UNKNOWN_ID,
    fault,
    post_action,
    set_fields,
)

BODY = {"changePassword": {"adminPass": "n3w-secret"}}


def test_change_password__owner_gets_202_and_a_queued_action(client, store, enqueuer, active_server):
    response = post_action(client, active_server.id, BODY, OWNER)
    assert response.status_code == 202
    assert response.get_data() == b""
    request_id = response.headers["x-openstack-request-id"]
    action = store.get_action(request_id)
    assert (action.action, action.user_id, action.project_id) == ("changePassword", "alice", "demo")
    assert enqueuer.sent[-1][0] == request_id
    assert store.get_run(request_id).params == {"admin_password": "n3w-secret"}
    instance = store.get_instance(active_server.id)
    assert instance.task_state == "updating_password"
    shown = client.get(f"/v2.1/servers/{active_server.id}", headers=OWNER).get_json()["server"]
    assert shown["status"] == "PASSWORD"


@pytest.mark.parametrize("body, message", [
    ({"changePassword": {}},
     "Invalid input for field/attribute changePassword. Value: {}. 'adminPass' is a required property"),
    ({"changePassword": {"adminPass": 5}},
     "Invalid input for field/attribute adminPass. Value: 5. 5 is not of type 'string'"),
    ({"changePassword": {"adminPass": None}},
     "Invalid input for field/attribute adminPass. Value: None. None is not of type 'string'"),
    ({"changePassword": None},
     "Invalid input for field/attribute changePassword. Value: None. None is not of type 'object'"),
    ({"changePassword": {"adminPass": "x", "user": "root"}},
     "Invalid input for field/attribute changePassword. Value: {'adminPass': 'x', 'user': 'root'}. "
     "Additional properties are not allowed ('user' was unexpected)"),
])
def test_change_password__invalid_body_is_400(client, active_server, body, message):
    response = post_action(client, active_server.id, body, OWNER)
    assert fault(response) == ("badRequest", 400, message)


def test_change_password__not_active_is_409(client, build_server):
    response = post_action(client, build_server.id, BODY, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Cannot 'changePassword' instance "
                                                          f"{build_server.id} while it is in vm_state building")


def test_change_password__busy_task_is_409(client, active_server):
    assert post_action(client, active_server.id, BODY, OWNER).status_code == 202
    response = post_action(client, active_server.id, BODY, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Cannot 'changePassword' instance "
                                                          f"{active_server.id} while it is in task_state "
                                                          "updating_password")


def test_change_password__locked_is_409_for_owner_but_not_for_admin(client, store, active_server):
    set_fields(store, active_server.id, locked=True)
    response = post_action(client, active_server.id, BODY, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Instance {active_server.id} is locked")
    assert store.get_instance(active_server.id).task_state is None
    assert post_action(client, active_server.id, BODY, ADMIN).status_code == 202


def test_change_password__other_project_is_404_and_no_token_401(client, active_server):
    response = post_action(client, active_server.id, BODY, OTHER)
    assert fault(response) == ("itemNotFound", 404, f"Instance {active_server.id} could not be found.")
    assert post_action(client, active_server.id, BODY, {}).status_code == 401


def test_change_password__unknown_server_is_404(client):
    assert post_action(client, UNKNOWN_ID, BODY, OWNER).status_code == 404
