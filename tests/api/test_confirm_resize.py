"""confirmResize over HTTP: policy, codes, records.

No worker runs here: a server in VERIFY_RESIZE is written the way the migrate flow leaves
one (``resized_server``).
"""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from compute.errors import QueueUnavailable
from compute.models import Instance
from compute.states import VmState
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tests.api.conftest import (
    ADMIN,
    DEST,
    HOST,
    NOBODY,
    OTHER,
    OWNER,
    fault,
    migration_of,
    post_action,
    set_fields,
    show,
)


# ---- confirmResize --------------------------------------------------------------------------------
@pytest.mark.parametrize("caller", [OWNER, ADMIN])
def test_confirm__204_empty_and_the_migration_confirming(client: FlaskClient, store: Store, enqueuer: Any,
                                                         resized_server: Instance, caller: dict[str, str]) -> None:
    shown = show(client, resized_server)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("VERIFY_RESIZE", DEST)
    response = post_action(client, resized_server.id, {"confirmResize": None}, caller)
    assert (response.status_code, response.data) == (204, b"")
    request_id = response.headers["x-openstack-request-id"]
    assert store.get_action(request_id).action == "confirmResize"
    assert store.get_run(request_id).flow == "confirmResize"
    assert enqueuer.sent[-1][0] == request_id
    assert migration_of(store, resized_server).status == "confirming"
    assert show(client, resized_server)["status"] == "VERIFY_RESIZE"  # no task_state while confirming


def test_confirm__not_resized_is_409_and_without_a_finished_migration_400(
        client: FlaskClient, store: Store, active_server: Instance) -> None:
    response = post_action(client, active_server.id, {"confirmResize": None}, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Cannot 'confirmResize' instance {active_server.id} "
                                                          "while it is in vm_state active")
    set_fields(store, active_server.id, vm_state=VmState.RESIZED)
    response = post_action(client, active_server.id, {"confirmResize": None}, OWNER)
    assert fault(response) == ("badRequest", 400, "Instance has not been resized.")


def test_confirm__second_time_is_400(client: FlaskClient, resized_server: Instance) -> None:
    assert post_action(client, resized_server.id, {"confirmResize": None}).status_code == 204
    response = post_action(client, resized_server.id, {"confirmResize": None})
    assert fault(response) == ("badRequest", 400, "Instance has not been resized.")


def test_confirm__locked_other_project_source_down(client: FlaskClient, store: Store, fleet: SimulatedFleet,
                                                   resized_server: Instance) -> None:
    assert post_action(client, resized_server.id, {"confirmResize": None}, OTHER).status_code == 404
    assert post_action(client, resized_server.id, {"confirmResize": None}, NOBODY).status_code == 401
    set_fields(store, resized_server.id, locked=True)
    response = post_action(client, resized_server.id, {"confirmResize": None}, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Instance {resized_server.id} is locked")
    fleet.set_host_state(HOST, up=False)
    response = post_action(client, resized_server.id, {"confirmResize": None})
    assert fault(response) == ("conflictingRequest", 409, "Service is unavailable at this time.")
    assert migration_of(store, resized_server).status == "finished"


def test_confirm__broker_down_is_503_and_the_migration_is_finished_again(
        client: FlaskClient, store: Store, enqueuer: Any, resized_server: Instance) -> None:
    enqueuer.fail_with = QueueUnavailable("broker down")
    assert post_action(client, resized_server.id, {"confirmResize": None}).status_code == 503
    assert migration_of(store, resized_server).status == "finished"
    assert [a.action for a in store.list_actions(resized_server.id)] == ["create"]
