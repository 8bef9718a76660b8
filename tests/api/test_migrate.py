"""migrate (cold migration) over HTTP: bodies per microversion, policy, codes, records.

No worker runs here: a migrate stays accepted (resize_prep, pre-migrating); a server in
VERIFY_RESIZE is written the way the migrate flow leaves one (``resized_server``).
"""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from compute.errors import QueueUnavailable
from compute.models import Instance
from compute.states import PowerState, VmState
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tests.api.conftest import (
    ADMIN,
    DEST,
    HOST,
    NOBODY,
    OTHER,
    OWNER,
    UNKNOWN_ID,
    fault,
    migration_of,
    mv,
    post_action,
    set_fields,
    show,
)

LATEST = "2.104"


@pytest.fixture
def owner_may_migrate(make_app: Any, tmp_path: Any) -> FlaskClient:
    """Owners may migrate (today's manager-style rule), but only admins may name a host."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"os_compute_api:os-migrate-server:migrate": "rule:admin_or_owner"\n')
    app: Flask = make_app(oslo_policy={"policy_file": str(policy_file)})
    return app.test_client()


# ---- migrate: accepted ---------------------------------------------------------------------------
def test_migrate__202_records_the_action_and_a_pre_migrating_migration(
        client: FlaskClient, store: Store, enqueuer: Any, active_server: Instance) -> None:
    response = post_action(client, active_server.id, {"migrate": None})
    assert (response.status_code, response.data) == (202, b"")
    request_id = response.headers["x-openstack-request-id"]
    action = store.get_action(request_id)
    assert (action.action, action.user_id, action.project_id) == ("migrate", "admin", "admin")
    assert enqueuer.sent[-1][0] == request_id
    run = store.get_run(request_id)
    migration = migration_of(store, active_server)
    assert (run.flow, run.params) == ("migrate", {"migration_uuid": migration.uuid, "requested_host": None})
    assert migration.model_dump(include={"migration_type", "status", "source_compute", "source_node",
                                         "dest_compute", "old_instance_type_id", "new_instance_type_id",
                                         "request_id", "user_id", "project_id"}) == {
        "migration_type": "migration", "status": "pre-migrating", "source_compute": HOST, "source_node": HOST,
        "dest_compute": None, "old_instance_type_id": "1", "new_instance_type_id": "1", "request_id": request_id,
        "user_id": "admin", "project_id": "admin"}
    shown = show(client, active_server, {**ADMIN, **mv("2.56")})
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("RESIZE", "resize_prep")


@pytest.mark.parametrize("version, body", [
    ("2.1", {"migrate": None}),
    ("2.1", {"migrate": {}}),
    ("2.1", {"migrate": {"host": "not-read-below-2.56"}}),
    ("2.55", {"migrate": "anything goes below 2.56"}),
    ("2.55", {"migrate": {"host": DEST}}),
    ("2.56", {"migrate": None}),      # openstacksdk
    ("2.56", {"migrate": {}}),        # novaclient from 2.56
    ("2.56", {"migrate": {"host": None}}),
    (LATEST, {"migrate": {}}),
])
def test_migrate__bodies_without_a_host_are_202_with_no_requested_host(
        client: FlaskClient, store: Store, active_server: Instance, version: str, body: Any) -> None:
    response = post_action(client, active_server.id, body, {**ADMIN, **mv(version)})
    assert response.status_code == 202, response.get_json()
    assert store.get_run(response.headers["x-openstack-request-id"]).params["requested_host"] is None


@pytest.mark.parametrize("version", ["2.56", LATEST])
def test_migrate__host_from_2_56(client: FlaskClient, store: Store, active_server: Instance, version: str) -> None:
    response = post_action(client, active_server.id, {"migrate": {"host": DEST}}, {**ADMIN, **mv(version)})
    assert response.status_code == 202
    assert store.get_run(response.headers["x-openstack-request-id"]).params["requested_host"] == DEST


# ---- migrate: refused ----------------------------------------------------------------------------
@pytest.mark.parametrize("body, message", [
    ({"migrate": "x"}, "Invalid input for field/attribute migrate. Value: x. 'x' is not of type 'object', 'null'"),
    ({"migrate": []}, "Invalid input for field/attribute migrate. Value: []. [] is not of type 'object', 'null'"),
    ({"migrate": {"host": 5}}, "Invalid input for field/attribute host. Value: 5. 5 is not of type 'string', 'null'"),
    ({"migrate": {"host": ""}}, "Invalid input for field/attribute host. Value: . '' is too short"),
    ({"migrate": {"host": "a" * 256}}, f"Invalid input for field/attribute host. Value: {'a' * 256}. "
                                       f"'{'a' * 256}' is too long"),
    ({"migrate": {"host": "bad host"}}, "Invalid input for field/attribute host. Value: bad host. "
                                        "'bad host' does not match '^[a-zA-Z0-9-._]*$'"),
    ({"migrate": {"host": DEST, "force": True}}, "Invalid input for field/attribute migrate. Value: "
                                                 "{'host': 'compute-kvm-2', 'force': True}. Additional properties "
                                                 "are not allowed ('force' was unexpected)"),
])
def test_migrate__invalid_body_from_2_56_is_400_before_the_lookup(
        client: FlaskClient, store: Store, active_server: Instance, body: Any, message: str) -> None:
    for server_id in (active_server.id, UNKNOWN_ID):
        response = post_action(client, server_id, body, {**ADMIN, **mv("2.56")})
        assert fault(response) == ("badRequest", 400, message)
    assert store.list_migrations(active_server.id) == []


@pytest.mark.parametrize("host, message", [
    (HOST, "Cannot migrate to the host where the server exists."),
    ("compute-nope", "Compute host compute-nope could not be found."),
])
def test_migrate__current_or_unknown_host_is_400(client: FlaskClient, store: Store, active_server: Instance,
                                                 host: str, message: str) -> None:
    response = post_action(client, active_server.id, {"migrate": {"host": host}}, {**ADMIN, **mv("2.56")})
    assert fault(response) == ("badRequest", 400, message)
    assert store.get_instance(active_server.id).task_state is None
    assert store.list_migrations(active_server.id) == []


def test_migrate__source_compute_down_is_409(client: FlaskClient, fleet: SimulatedFleet,
                                             active_server: Instance) -> None:
    fleet.set_host_state(HOST, up=False)
    response = post_action(client, active_server.id, {"migrate": None})
    assert fault(response) == ("conflictingRequest", 409, "Service is unavailable at this time.")


def test_migrate__not_active_or_stopped_is_409(client: FlaskClient, build_server: Instance,
                                               resized_server: Instance) -> None:
    response = post_action(client, build_server.id, {"migrate": None})
    assert fault(response) == ("conflictingRequest", 409,
                               f"Cannot 'migrate' instance {build_server.id} while it is in vm_state building")
    response = post_action(client, resized_server.id, {"migrate": None})
    assert fault(response)[1] == 409


def test_migrate__stopped_server_is_accepted(client: FlaskClient, store: Store, active_server: Instance) -> None:
    set_fields(store, active_server.id, vm_state=VmState.STOPPED, power_state=PowerState.SHUTDOWN)
    assert post_action(client, active_server.id, {"migrate": None}).status_code == 202


def test_migrate__policy_is_admin_and_host_has_its_own_rule(client: FlaskClient, active_server: Instance) -> None:
    response = post_action(client, active_server.id, {"migrate": None}, OWNER)
    assert fault(response) == ("forbidden", 403,
                               "Policy doesn't allow os_compute_api:os-migrate-server:migrate to be performed.")
    assert post_action(client, active_server.id, {"migrate": None}, OTHER).status_code == 404
    assert post_action(client, active_server.id, {"migrate": None}, NOBODY).status_code == 401
    assert post_action(client, UNKNOWN_ID, {"migrate": None}).status_code == 404


def test_migrate__with_an_owner_rule_the_host_still_needs_admin_and_the_lock_holds(
        owner_may_migrate: FlaskClient, store: Store, active_server: Instance) -> None:
    response = post_action(owner_may_migrate, active_server.id, {"migrate": {"host": DEST}}, {**OWNER, **mv("2.56")})
    assert fault(response) == ("forbidden", 403,
                               "Policy doesn't allow os_compute_api:os-migrate-server:migrate:host to be performed.")
    set_fields(store, active_server.id, locked=True)
    response = post_action(owner_may_migrate, active_server.id, {"migrate": {}}, {**OWNER, **mv("2.56")})
    assert fault(response) == ("conflictingRequest", 409, f"Instance {active_server.id} is locked")
    set_fields(store, active_server.id, locked=False)
    assert post_action(owner_may_migrate, active_server.id, {"migrate": {}}, {**OWNER, **mv("2.56")}).status_code == 202


def test_migrate__broker_down_is_503_and_leaves_no_visible_trace(
        client: FlaskClient, store: Store, enqueuer: Any, active_server: Instance) -> None:
    enqueuer.fail_with = QueueUnavailable("broker down")
    response = post_action(client, active_server.id, {"migrate": None})
    assert fault(response) == ("serviceUnavailable", 503, "broker down")
    assert store.get_instance(active_server.id).task_state is None
    assert [a.action for a in store.list_actions(active_server.id)] == ["create"]
    migration = migration_of(store, active_server)
    assert (migration.status, migration.hidden) == ("error", True)
    enqueuer.fail_with = None
    assert post_action(client, active_server.id, {"migrate": None}).status_code == 202
