"""os-resetState, injectNetworkInfo and resetNetwork: codes, bodies and effects."""
from __future__ import annotations

import pytest

from compute.errors import QueueUnavailable
from tests.api.conftest import ADMIN, OWNER, UNKNOWN_ID, fault, post_action, set_fields

RESET_STATE_DENIED = "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed."
GONE = "This resource is no longer available.  No forwarding address is given."


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


# ---- injectNetworkInfo -------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, {}, {"anything": [1, 2]}, "x", 0])
def test_inject_network_info__any_value_is_202_and_queued(client, enqueuer, active_server, value):
    response = post_action(client, active_server.id, {"injectNetworkInfo": value})
    assert response.status_code == 202
    assert response.get_data() == b""
    assert enqueuer.sent[-1][0] == response.headers["x-openstack-request-id"]


def test_inject_network_info__server_without_host_is_409(client, build_server):
    response = post_action(client, build_server.id, {"injectNetworkInfo": None})
    assert response.status_code == 409
    key, code, message = fault(response)
    assert (key, code) == ("conflictingRequest", 409)
    assert build_server.id in message


def test_inject_network_info__owner_is_403(client, active_server):
    response = post_action(client, active_server.id, {"injectNetworkInfo": None}, OWNER)
    assert fault(response) == ("forbidden", 403, "Policy doesn't allow "
                               "os_compute_api:os-admin-actions:inject_network_info to be performed.")


def test_inject_network_info__locked_server_is_409_for_a_non_admin_allowed_by_policy(
        make_app, store, active_server, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"os_compute_api:os-admin-actions:inject_network_info": "rule:admin_or_owner"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    set_fields(store, active_server.id, locked=True)
    response = post_action(client, active_server.id, {"injectNetworkInfo": None}, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Instance {active_server.id} is locked")
    assert post_action(client, active_server.id, {"injectNetworkInfo": None}, ADMIN).status_code == 202


# ---- resetNetwork ------------------------------------------------------------------------

def test_reset_network__seed_mode_is_202_and_queued(client, enqueuer, active_server):
    response = post_action(client, active_server.id, {"resetNetwork": None})
    assert response.status_code == 202
    assert enqueuer.sent[-1][0] == response.headers["x-openstack-request-id"]


def test_reset_network__seed_mode_checks_lookup_policy_and_host(client, build_server, active_server):
    assert post_action(client, UNKNOWN_ID, {"resetNetwork": None}).status_code == 404
    response = post_action(client, active_server.id, {"resetNetwork": None}, OWNER)
    assert fault(response)[1:] == (403, "Policy doesn't allow os_compute_api:os-admin-actions:reset_network "
                                        "to be performed.")
    assert post_action(client, build_server.id, {"resetNetwork": None}).status_code == 409


@pytest.mark.parametrize("server", ["unknown", "active"])
@pytest.mark.parametrize("headers", [ADMIN, OWNER, {"X-Auth-Token": "bob:other"}])
def test_reset_network__removed_mode_is_410_before_lookup_and_policy(make_app, active_server, server, headers):
    client = make_app(api={"reset_network_removed": True}).test_client()
    server_id = UNKNOWN_ID if server == "unknown" else active_server.id
    response = post_action(client, server_id, {"resetNetwork": {"any": "thing"}}, headers)
    assert response.status_code == 410
    assert fault(response) == ("computeFault", 410, GONE)


def test_reset_network__removed_mode_still_needs_a_token(make_app, active_server):
    client = make_app(api={"reset_network_removed": True}).test_client()
    assert post_action(client, active_server.id, {"resetNetwork": None}, {}).status_code == 401


# ---- broker down -------------------------------------------------------------------------

@pytest.mark.parametrize("body", [{"injectNetworkInfo": None}, {"resetNetwork": None},
                                  {"changePassword": {"adminPass": "s3cret"}}])
def test_queue_unavailable__503_and_nothing_changed(client, store, enqueuer, active_server, body):
    before = store.get_instance(active_server.id)
    actions_before = [a.request_id for a in store.list_actions(active_server.id)]
    enqueuer.fail_with = QueueUnavailable("The message broker is not answering.")
    response = post_action(client, active_server.id, body)
    assert response.status_code == 503
    assert fault(response) == ("serviceUnavailable", 503, "The message broker is not answering.")
    after = store.get_instance(active_server.id)
    assert (after.vm_state, after.task_state) == (before.vm_state, before.task_state)
    assert [a.request_id for a in store.list_actions(active_server.id)] == actions_before
    assert store.get_action(response.headers["x-openstack-request-id"]) is None


def test_queue_unavailable__create_leaves_no_server(client, store, enqueuer):
    enqueuer.fail_with = QueueUnavailable("")
    response = client.post("/v2.1/servers", json={"server": {"name": "vm", "flavorRef": "1"}}, headers=OWNER)
    assert response.status_code == 503
    assert fault(response)[0] == "serviceUnavailable"
    assert store.list_instances() == []


def test_queue_unavailable__delete_of_a_busy_server_is_503_and_changes_nothing(
        client, store, active_server, enqueuer):
    from compute.errors import QueueUnavailable
    from tests.api.conftest import set_fields

    set_fields(store, active_server.id, task_state="image_backup")
    enqueuer.fail_with = QueueUnavailable("broker down")
    response = client.delete(f"/v2.1/servers/{active_server.id}", headers={"X-Auth-Token": "admin:admin"})
    assert response.status_code == 503
    after = store.get_instance(active_server.id)
    assert (after.vm_state, after.task_state) == ("active", "image_backup")
    assert [a.action for a in store.list_actions(active_server.id)] == ["create"]
