"""A broker that refuses the message: 503, and nothing changed (actions that enqueue, create, delete)."""
from __future__ import annotations

import pytest

from compute.errors import QueueUnavailable
from tests.api.conftest import OWNER, fault, post_action

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
