"""Server delete (DELETE /servers/{id}): 204 and a queued delete action, the lock, idempotence."""
from __future__ import annotations

from tests.api.conftest import OWNER, fault, set_fields

# ---- delete ------------------------------------------------------------------------------

def test_delete__204_and_a_queued_delete_action(client, store, enqueuer, active_server):
    response = client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER)
    assert response.status_code == 204
    assert response.get_data() == b""
    request_id = response.headers["x-openstack-request-id"]
    assert store.get_action(request_id).action == "delete"
    assert enqueuer.sent[-1][0] == request_id
    assert store.get_instance(active_server.id).task_state == "deleting"


def test_delete__locked_is_409_for_owner(client, store, active_server):
    set_fields(store, active_server.id, locked=True)
    response = client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Instance {active_server.id} is locked")


def test_delete__twice_is_idempotent(client, active_server):
    assert client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER).status_code == 204
    assert client.delete(f"/v2.1/servers/{active_server.id}", headers=OWNER).status_code == 204
