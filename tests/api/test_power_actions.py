"""os-stop, os-start, pause, unpause, suspend, resume over HTTP: 202, the action, the body, policy, 404/409.

No worker runs here: the answer is a 202 with the task_state set and the action recorded;
what the flows do is in tests/unit/test_power_actions.py, and which states and locks each
action refuses in tests/api/test_power_state_rules.py.
"""
from __future__ import annotations

import pytest

from compute.errors import QueueUnavailable
from compute.states import PowerState, VmState
from tests.api.conftest import (
    ADMIN,
    NOBODY,
    OTHER,
    OWNER,
    UNKNOWN_ID,
    fault,
    mv,
    post_action,
    set_fields,
    show,
)

# body key -> (action name, vm_state it starts from, power_state then, task_state set, policy rule)
ACTIONS = {
    "os-stop": ("stop", VmState.ACTIVE, PowerState.RUNNING, "powering-off", "os_compute_api:servers:stop"),
    "os-start": ("start", VmState.STOPPED, PowerState.SHUTDOWN, "powering-on", "os_compute_api:servers:start"),
    "pause": ("pause", VmState.ACTIVE, PowerState.RUNNING, "pausing", "os_compute_api:os-pause-server:pause"),
    "unpause": ("unpause", VmState.PAUSED, PowerState.PAUSED, "unpausing", "os_compute_api:os-pause-server:unpause"),
    "suspend": ("suspend", VmState.ACTIVE, PowerState.RUNNING, "suspending",
                "os_compute_api:os-suspend-server:suspend"),
    "resume": ("resume", VmState.SUSPENDED, PowerState.SUSPENDED, "resuming",
               "os_compute_api:os-suspend-server:resume"),
}
KEYS = sorted(ACTIONS)


def ready(store, server, key):  # noqa: ANN001, ANN201
    _, vm_state, power_state, _, _ = ACTIONS[key]
    return set_fields(store, server.id, vm_state=vm_state, power_state=power_state)


@pytest.mark.parametrize("key", KEYS)
def test_accepted__empty_202_task_state_set_and_the_action_recorded(client, store, active_server, key):
    name, vm_state, power_state, task_state, _ = ACTIONS[key]
    server = ready(store, active_server, key)
    response = post_action(client, server.id, {key: None}, OWNER)
    assert (response.status_code, response.get_data()) == (202, b"")
    request_id = response.headers["x-openstack-request-id"]
    assert (store.get_action(request_id).action, store.get_run(request_id).flow) == (name, name)
    shown = show(client, server, {**OWNER, **mv("2.1")})
    assert (shown["OS-EXT-STS:vm_state"], shown["OS-EXT-STS:task_state"], shown["OS-EXT-STS:power_state"]) == (
        vm_state, task_state, power_state)
    listed = client.get(f"/v2.1/servers/{server.id}/os-instance-actions", headers=OWNER).get_json()
    assert [a["action"] for a in listed["instanceActions"]][:1] == [name]


def test_accepted__stop_resets_progress_and_status_stays_active_while_powering_off(client, store, active_server):
    set_fields(store, active_server.id, progress=55)
    assert post_action(client, active_server.id, {"os-stop": None}, OWNER).status_code == 202
    shown = show(client, active_server)
    assert (shown["status"], shown["progress"]) == ("ACTIVE", 0)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", [None, {}, {"anything": [1, 2]}, "x", 0])
def test_body__any_value_of_the_key_is_accepted_as_in_nova(client, store, active_server, key, value):
    server = ready(store, active_server, key)
    assert post_action(client, server.id, {key: value}, OWNER).status_code == 202


@pytest.mark.parametrize("key", KEYS)
def test_body__another_key_beside_it_is_400(client, store, active_server, key):
    server = ready(store, active_server, key)
    response = post_action(client, server.id, {key: None, "extra": 1}, OWNER)
    assert response.status_code == 400
    assert store.get_instance(server.id).task_state is None


@pytest.mark.parametrize("key", KEYS)
def test_lookup__unknown_or_another_projects_server_is_404_and_no_token_401(client, store, active_server, key):
    server = ready(store, active_server, key)
    assert fault(post_action(client, UNKNOWN_ID, {key: None})) == (
        "itemNotFound", 404, f"Instance {UNKNOWN_ID} could not be found.")
    assert post_action(client, server.id, {key: None}, OTHER).status_code == 404
    assert post_action(client, server.id, {key: None}, NOBODY).status_code == 401
    assert store.get_instance(server.id).task_state is None


@pytest.mark.parametrize("key", KEYS)
def test_policy__a_denying_rule_is_403_naming_it(make_app, store, active_server, tmp_path, key):
    _, _, _, _, rule = ACTIONS[key]
    server = ready(store, active_server, key)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(f'"{rule}": "!"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    assert fault(post_action(client, server.id, {key: None}, ADMIN)) == (
        "forbidden", 403, f"Policy doesn't allow {rule} to be performed.")


@pytest.mark.parametrize("key", KEYS)
def test_policy__admin_may_act_on_any_projects_server(client, store, active_server, key):
    server = ready(store, active_server, key)
    response = post_action(client, server.id, {key: None}, ADMIN)
    assert response.status_code == 202
    assert store.get_action(response.headers["x-openstack-request-id"]).user_id == "admin"


@pytest.mark.parametrize(("key", "message"), [
    ("os-stop", "Instance {id} is not ready"),
    ("os-start", "Instance {id} is not ready"),
    ("pause", "Cannot 'pause' instance {id} while it is in vm_state building"),
    ("suspend", "Cannot 'suspend' instance {id} while it is in vm_state building"),
])
def test_state__a_server_still_building_is_409(client, build_server, key, message):
    """os-stop and os-start check the host before the state (Nova's ``check_instance_host``)."""
    assert fault(post_action(client, build_server.id, {key: None}, OWNER)) == (
        "conflictingRequest", 409, message.format(id=build_server.id))


def test_queue_unavailable__503_and_the_state_and_action_undone(client, store, enqueuer, active_server):
    enqueuer.fail_with = QueueUnavailable("down")
    response = post_action(client, active_server.id, {"pause": None}, OWNER)
    assert response.status_code == 503
    after = store.get_instance(active_server.id)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    assert [a.action for a in store.list_actions(active_server.id)] == ["create"]
