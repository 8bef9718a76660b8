"""lock and unlock over HTTP (nova lock_server.py): the body per microversion, the server view, who may unlock.

Both are done before the 202 (no flow), recorded as actions ``lock``/``unlock`` with one
``api_lock``/``api_unlock`` event each. What a lock refuses is in test_power_state_rules.py.
"""
from __future__ import annotations

import pytest

from tests.api.conftest import (
    ADMIN,
    NOBODY,
    OTHER,
    OWNER,
    UNKNOWN_ID,
    fault,
    mv,
    post_action,
    show,
)

UNLOCK_OVERRIDE = "os_compute_api:os-lock-server:unlock:unlock_override"


def lock(client, server_id, value=None, headers=OWNER, version="2.1"):  # noqa: ANN001, ANN201
    return post_action(client, server_id, {"lock": value}, {**headers, **mv(version)})


def unlock(client, server_id, value=None, headers=OWNER, version="2.1"):  # noqa: ANN001, ANN201
    return post_action(client, server_id, {"unlock": value}, {**headers, **mv(version)})


def lock_fields(client, server, version="2.73"):  # noqa: ANN001, ANN201
    shown = show(client, server, {**ADMIN, **mv(version)})
    return shown.get("locked"), shown.get("locked_reason", "absent")


# ---- the answer and the record ------------------------------------------------------------------------
def test_lock__202_empty_done_before_the_answer_with_its_action_and_event(client, store, settings, active_server):
    response = lock(client, active_server.id)
    assert (response.status_code, response.get_data()) == (202, b"")
    request_id = response.headers["x-openstack-request-id"]
    record = store.get_instance(active_server.id)
    assert (record.locked, record.locked_by, record.task_state) == (True, "owner", None)
    assert store.get_run(request_id) is None
    shown = client.get(f"/v2.1/servers/{active_server.id}/os-instance-actions/{request_id}",
                       headers={**ADMIN, **mv("2.84")}).get_json()["instanceAction"]
    assert (shown["action"], shown["user_id"], shown["project_id"], shown["message"]) == ("lock", "alice", "demo", None)
    assert [(e["event"], e["result"], e["host"]) for e in shown["events"]] == [("api_lock", "Success", settings.host)]


def test_unlock__202_clears_the_lock_and_is_recorded_even_when_not_locked(client, store, active_server):
    first = unlock(client, active_server.id)
    assert (first.status_code, store.get_action(first.headers["x-openstack-request-id"]).action) == (202, "unlock")
    lock(client, active_server.id, {"locked_reason": "x"}, version="2.73")
    response = unlock(client, active_server.id)
    assert response.status_code == 202
    record = store.get_instance(active_server.id)
    assert (record.locked, record.locked_by, record.locked_reason) == (False, None, None)
    [event] = store.list_events(response.headers["x-openstack-request-id"])
    assert (event.event, event.result) == ("api_unlock", "Success")


def test_lock__again_by_the_owner_is_202_and_records_nothing(client, store, active_server):
    lock(client, active_server.id)
    again = lock(client, active_server.id)
    assert again.status_code == 202
    assert store.get_action(again.headers["x-openstack-request-id"]) is None
    assert [a.action for a in store.list_actions(active_server.id)] == ["lock", "create"]


# ---- the server view ---------------------------------------------------------------------------------
def test_view__locked_from_2_9_and_locked_reason_from_2_73(client, active_server):
    assert lock_fields(client, active_server, "2.8") == (None, "absent")
    assert lock_fields(client, active_server, "2.9") == (False, "absent")
    assert lock_fields(client, active_server) == (False, None)
    lock(client, active_server.id, {"locked_reason": "disk check"}, version="2.73")
    assert lock_fields(client, active_server, "2.72") == (True, "absent")
    assert lock_fields(client, active_server) == (True, "disk check")
    unlock(client, active_server.id)
    assert lock_fields(client, active_server) == (False, None)


def test_view__a_lock_without_reason_shows_null(client, active_server):
    lock(client, active_server.id, None, version="2.73")
    assert lock_fields(client, active_server) == (True, None)


# ---- the body ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, {}, "x", {"locked_reason": "ignored"}, {"other": 1}, [1]])
def test_body__below_2_73_any_value_and_no_reason_kept(client, store, active_server, value):
    assert lock(client, active_server.id, value, version="2.72").status_code == 202
    assert store.get_instance(active_server.id).locked_reason is None


@pytest.mark.parametrize(("value", "message"), [
    ("x", "Invalid input for field/attribute lock. Value: x. 'x' is not of type 'object', 'null'"),
    ([], "Invalid input for field/attribute lock. Value: []. [] is not of type 'object', 'null'"),
    ({"locked_reason": ""}, "Invalid input for field/attribute locked_reason. Value: . '' is too short"),
    ({"locked_reason": "r" * 256},
     f"Invalid input for field/attribute locked_reason. Value: {'r' * 256}. '{'r' * 256}' is too long"),
    ({"locked_reason": 5}, "Invalid input for field/attribute locked_reason. Value: 5. 5 is not of type 'string'"),
    ({"locked_reason": "x", "by": "me"}, ("Invalid input for field/attribute lock. Value: {'locked_reason': 'x', "
                                          "'by': 'me'}. Additional properties are not allowed ('by' was unexpected)")),
])
def test_body__from_2_73_null_or_a_reason_of_1_to_255(client, store, active_server, value, message):
    assert fault(lock(client, active_server.id, value, version="2.73")) == ("badRequest", 400, message)
    assert store.get_instance(active_server.id).locked is False


@pytest.mark.parametrize("value", [None, {}, {"a": 1}, "x"])
def test_body__unlock_takes_any_value_at_any_version(client, active_server, value):
    assert unlock(client, active_server.id, value, version="2.73").status_code == 202
    assert unlock(client, active_server.id, value, version="2.1").status_code == 202


def test_body__a_reason_of_255_characters_is_kept(client, store, active_server):
    assert lock(client, active_server.id, {"locked_reason": "r" * 255}, version="2.73").status_code == 202
    assert store.get_instance(active_server.id).locked_reason == "r" * 255


# ---- who may ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [lock, unlock])
def test_policy__others_404_no_token_401_unknown_404(client, active_server, call):
    assert call(client, active_server.id, headers=OTHER).status_code == 404
    assert call(client, active_server.id, headers=NOBODY).status_code == 401
    assert fault(call(client, UNKNOWN_ID, headers=ADMIN)) == (
        "itemNotFound", 404, f"Instance {UNKNOWN_ID} could not be found.")


def test_unlock__a_member_cannot_undo_an_admins_lock(client, store, active_server):
    assert lock(client, active_server.id, headers=ADMIN).status_code == 202
    assert store.get_instance(active_server.id).locked_by == "admin"
    response = unlock(client, active_server.id)
    assert fault(response) == ("forbidden", 403, f"Policy doesn't allow {UNLOCK_OVERRIDE} to be performed.")
    assert store.get_instance(active_server.id).locked is True
    assert [a.action for a in store.list_actions(active_server.id)] == ["lock", "create"]
    assert unlock(client, active_server.id, headers=ADMIN).status_code == 202
    assert store.get_instance(active_server.id).locked is False


def test_unlock__an_admin_may_undo_the_owners_lock(client, store, active_server):
    lock(client, active_server.id)
    assert unlock(client, active_server.id, headers=ADMIN).status_code == 202
    assert store.get_instance(active_server.id).locked is False


def test_unlock__the_override_rule_can_let_members_undo_an_admins_lock(make_app, store, active_server, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f'"{UNLOCK_OVERRIDE}": "rule:admin_or_owner"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    lock(client, active_server.id, headers=ADMIN)
    assert unlock(client, active_server.id).status_code == 202


def test_lock__an_admin_takes_over_the_owners_lock_then_the_owner_cannot_unlock(client, store, active_server):
    lock(client, active_server.id, {"locked_reason": "mine"}, version="2.73")
    assert lock(client, active_server.id, headers=ADMIN).status_code == 202
    record = store.get_instance(active_server.id)
    assert (record.locked_by, record.locked_reason) == ("admin", "mine")
    assert unlock(client, active_server.id).status_code == 403


@pytest.mark.parametrize(("rule", "call"), [("os_compute_api:os-lock-server:lock", lock),
                                            ("os_compute_api:os-lock-server:unlock", unlock)])
def test_policy__a_denying_rule_is_403_naming_it(make_app, active_server, tmp_path, rule, call):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f'"{rule}": "!"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    assert fault(call(client, active_server.id, headers=ADMIN)) == (
        "forbidden", 403, f"Policy doesn't allow {rule} to be performed.")


def test_lock__any_state_even_building(client, store, build_server):
    assert lock(client, build_server.id).status_code == 202
    assert unlock(client, build_server.id).status_code == 202
