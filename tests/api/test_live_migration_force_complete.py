"""Force-completing a live migration over HTTP (POST /servers/{id}/migrations/{id}/action), per microversion.

The migration is accepted over HTTP and moved to the status a test needs (``running``).
"""
from __future__ import annotations

import pytest

from tests.api.conftest import OWNER, cold_record, fault, force, set_status


# ---- POST /servers/{id}/migrations/{id}/action {"force_complete": null} ---------------------------------
def test_force_complete__202_and_its_own_instance_action(client, store, active_server, running):
    response = force(client, active_server.id, running.id)
    assert (response.status_code, response.get_data()) == (202, b"")
    request_id = response.headers["x-openstack-request-id"]
    action = store.get_action(request_id)
    assert action.action == "live_migration_force_complete"
    assert store.get_run(request_id).flow == "live_migration_force_complete"
    assert store.get_instance(active_server.id).task_state == "migrating"


@pytest.mark.parametrize(("body", "message"), [
    ({"force_complete": {}}, "Invalid input for field/attribute force_complete. Value: {}. {} is not of type 'null'"),
    ({"force_complete": None, "x": 1}, "Malformed request body"),
    ({"finish": None}, "There is no such action: finish"),
    ([], "Malformed request body"),
])
def test_force_complete__body(client, active_server, running, body, message):
    response = force(client, active_server.id, running.id, body)
    assert (response.status_code, fault(response)[2]) == (400, message)


def test_force_complete__below_2_22_does_not_exist(client, active_server, running):
    assert force(client, active_server.id, running.id, version="2.21").status_code == 404


def test_force_complete__400_when_not_running_unknown_or_cold(client, store, active_server, running):
    sid = active_server.id
    set_status(store, running, "preparing")
    response = force(client, sid, running.id)
    assert (response.status_code, fault(response)[2]) == (
        400, f"Migration {running.id} state of instance {sid} is preparing. "
             "Cannot force complete while the migration is in this state.")
    response = force(client, sid, 424242)
    assert (response.status_code, fault(response)[2]) == (400, f"Migration 424242 not found for instance {sid}")
    cold = cold_record(store, sid)
    response = force(client, sid, cold.id)
    assert (response.status_code, fault(response)[2]) == (
        400, f"Migration {cold.id} state of instance {sid} is finished. "
             "Cannot force complete while the migration is in this state.")
    assert [a.action for a in store.list_actions(sid)] == ["live-migration", "create"]


def test_force_complete__409_unless_active_and_migrating(client, store, active_server):
    response = force(client, active_server.id, 1)
    assert (response.status_code, fault(response)[2]) == (
        409, f"Instance {active_server.id} is in an invalid state for 'force_complete'")


def test_force_complete__policy(client, active_server, running):
    response = force(client, active_server.id, running.id, headers=OWNER)
    assert (response.status_code, fault(response)[2]) == (
        403, "Policy doesn't allow os_compute_api:servers:migrations:force_complete to be performed.")
