"""os-resetState: codes, bodies and effects."""
from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN, OWNER, UNKNOWN_ID, fault, post_action, set_fields

RESET_STATE_DENIED = "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed."


# ---- os-resetState ----------------------------------------------------------------------

@pytest.mark.parametrize("state, vm_state, status", [("active", "active", "ACTIVE"), ("error", "error", "ERROR")])
def test_reset_state__writes_state_before_answering_202(client, store, build_server, state, vm_state, status):
    response = post_action(client, build_server.id, {"os-resetState": {"state": state}})
    assert response.status_code == 202
    assert response.get_data() == b""
    instance = store.get_instance(build_server.id)
    assert (instance.vm_state, instance.task_state) == (vm_state, None)
    shown = client.get(f"/v2.1/servers/{build_server.id}", headers=ADMIN).get_json()["server"]
    assert shown["status"] == status


def test_reset_state__records_a_finished_action_without_events_and_enqueues_nothing(
        client, store, enqueuer, active_server):
    queued_before = list(enqueuer.sent)
    response = post_action(client, active_server.id, {"os-resetState": {"state": "error"}})
    request_id = response.headers["x-openstack-request-id"]
    newest = store.list_actions(active_server.id)[0]
    assert (newest.action, newest.request_id, newest.user_id, newest.project_id) == (
        "resetState", request_id, "admin", "admin")
    assert newest.finish_time is not None
    assert newest.message is None
    assert store.list_events(request_id) == []
    assert enqueuer.sent == queued_before


def test_reset_state__ignores_lock_and_current_task(client, store, build_server):
    set_fields(store, build_server.id, locked=True)
    response = post_action(client, build_server.id, {"os-resetState": {"state": "active"}})
    assert response.status_code == 202
    assert store.get_instance(build_server.id).task_state is None


@pytest.mark.parametrize("body, message", [
    ({"os-resetState": {"state": "stopped"}},
     "Invalid input for field/attribute state. Value: stopped. 'stopped' is not one of ['active', 'error']"),
    ({"os-resetState": {"state": "ACTIVE"}},
     "Invalid input for field/attribute state. Value: ACTIVE. 'ACTIVE' is not one of ['active', 'error']"),
    ({"os-resetState": {}},
     "Invalid input for field/attribute os-resetState. Value: {}. 'state' is a required property"),
    ({"os-resetState": None},
     "Invalid input for field/attribute os-resetState. Value: None. None is not of type 'object'"),
    ({"os-resetState": {"state": "active", "force": True}},
     "Invalid input for field/attribute os-resetState. Value: {'state': 'active', 'force': True}. "
     "Additional properties are not allowed ('force' was unexpected)"),
    ({"os-resetState": {"state": 1}},
     "Invalid input for field/attribute state. Value: 1. 1 is not one of ['active', 'error']"),
])
def test_reset_state__invalid_body_is_400_with_novas_message(client, active_server, body, message):
    response = post_action(client, active_server.id, body)
    assert response.status_code == 400
    assert fault(response) == ("badRequest", 400, message)


def test_reset_state__schema_is_checked_before_the_lookup(client):
    response = post_action(client, UNKNOWN_ID, {"os-resetState": {"state": "stopped"}})
    assert response.status_code == 400


@pytest.mark.parametrize("server_id", [UNKNOWN_ID, "not-a-uuid", "x:y:actions"])
def test_reset_state__unknown_server_is_404(client, server_id):
    response = post_action(client, server_id, {"os-resetState": {"state": "active"}})
    assert response.status_code == 404
    assert fault(response) == ("itemNotFound", 404, f"Instance {server_id} could not be found.")


def test_reset_state__owner_is_403_after_lookup(client, active_server):
    response = post_action(client, active_server.id, {"os-resetState": {"state": "active"}}, OWNER)
    assert response.status_code == 403
    assert fault(response) == ("forbidden", 403, RESET_STATE_DENIED)


def test_reset_state__deleted_server_is_404(client, store, active_server):
    set_fields(store, active_server.id, deleted=True, vm_state="deleted")
    assert post_action(client, active_server.id, {"os-resetState": {"state": "active"}}).status_code == 404
