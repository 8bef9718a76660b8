"""revertResize over HTTP: codes, records, and what a refused enqueue leaves.

No worker runs here: a server in VERIFY_RESIZE is written the way the migrate flow leaves
one (``resized_server``).
"""
from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from compute.errors import QueueUnavailable
from compute.models import Instance
from compute.states import VmState
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tests.api.conftest import (
    OWNER,
    fault,
    migration_of,
    post_action,
    set_fields,
    show,
)


# ---- revertResize ---------------------------------------------------------------------------------
def test_revert__202_and_revert_resize_status(client: FlaskClient, store: Store, resized_server: Instance) -> None:
    response = post_action(client, resized_server.id, {"revertResize": None}, OWNER)
    assert (response.status_code, response.data) == (202, b"")
    request_id = response.headers["x-openstack-request-id"]
    assert (store.get_action(request_id).action, store.get_run(request_id).flow) == ("revertResize", "revertResize")
    assert migration_of(store, resized_server).status == "reverting"
    shown = show(client, resized_server)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("REVERT_RESIZE", "resize_reverting")
    response = post_action(client, resized_server.id, {"confirmResize": None})
    assert fault(response) == ("conflictingRequest", 409, f"Cannot 'confirmResize' instance {resized_server.id} "
                                                          "while it is in task_state resize_reverting")


def test_revert__not_resized_409_no_migration_400_source_down_409(
        client: FlaskClient, store: Store, fleet: SimulatedFleet, active_server: Instance) -> None:
    response = post_action(client, active_server.id, {"revertResize": None}, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Cannot 'revertResize' instance {active_server.id} "
                                                          "while it is in vm_state active")
    set_fields(store, active_server.id, vm_state=VmState.RESIZED)
    assert fault(post_action(client, active_server.id, {"revertResize": None}))[1:] == (
        400, "Instance has not been resized.")


def test_revert__broker_down_is_503_and_restores_verify_resize(
        client: FlaskClient, store: Store, enqueuer: Any, resized_server: Instance) -> None:
    enqueuer.fail_with = QueueUnavailable("broker down")
    assert post_action(client, resized_server.id, {"revertResize": None}).status_code == 503
    assert migration_of(store, resized_server).status == "finished"
    assert show(client, resized_server)["status"] == "VERIFY_RESIZE"
