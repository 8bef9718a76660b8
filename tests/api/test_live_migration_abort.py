"""Aborting a live migration over HTTP (DELETE /servers/{id}/migrations/{id}), per microversion.

The migration is accepted over HTTP and moved to the status a test needs (``running``).
"""
from __future__ import annotations

from tests.api.conftest import OWNER, abort, fault, set_status


# ---- DELETE /servers/{id}/migrations/{id} -----------------------------------------------------------------
def test_abort__202_and_its_own_instance_action(client, store, active_server, running):
    response = abort(client, active_server.id, running.id)
    assert (response.status_code, response.get_data()) == (202, b"")
    request_id = response.headers["x-openstack-request-id"]
    assert store.get_action(request_id).action == "live_migration_cancel"
    assert store.get_run(request_id).params == {"migration_id": str(running.id), "abortable": ["running"]}


def test_abort__queued_and_preparing_only_from_2_65(client, store, active_server, running):
    for status in ("queued", "preparing"):
        set_status(store, running, status)
        response = abort(client, active_server.id, running.id, "2.64")
        assert (response.status_code, fault(response)[2]) == (
            400, f"Migration {running.id} state of instance {active_server.id} is {status}. "
                 "Cannot abort live migration while the migration is in this state.")
    response = abort(client, active_server.id, running.id, "2.65")
    assert response.status_code == 202
    params = store.get_run(response.headers["x-openstack-request-id"]).params
    assert params["abortable"] == ["queued", "preparing", "running"]


def test_abort__404_unknown_409_not_migrating(client, store, active_server, running):
    sid = active_server.id
    response = abort(client, sid, 424242)
    assert (response.status_code, fault(response)[2]) == (404, f"Migration 424242 not found for instance {sid}")
    store.update_instance(sid, lambda i: setattr(i, "task_state", None))
    response = abort(client, sid, running.id)
    assert (response.status_code, fault(response)[2]) == (
        409, f"Instance {sid} is in an invalid state for 'abort live migration'")


def test_abort__below_2_24_does_not_exist_and_is_admin_only(client, active_server, running):
    assert abort(client, active_server.id, running.id, "2.23").status_code == 404
    response = abort(client, active_server.id, running.id, headers=OWNER)
    assert (response.status_code, fault(response)[2]) == (
        403, "Policy doesn't allow os_compute_api:servers:migrations:delete to be performed.")
