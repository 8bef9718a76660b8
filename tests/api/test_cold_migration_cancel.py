"""Cancelling a cold migration over HTTP (DELETE /servers/{id}/migrations/{id}): before and after its copy.

No worker runs here: a migrate stays accepted (resize_prep, pre-migrating) until a test moves it on.
"""
from __future__ import annotations

from flask.testing import FlaskClient

from compute.models import Instance
from compute.store import Store
from tests.api.conftest import (
    ADMIN,
    OWNER,
    fault,
    migration_of,
    mv,
    post_action,
    set_fields,
)


def test_cancel__delete_on_a_cold_migration_before_its_copy_is_202_and_its_own_action(
        client: FlaskClient, store: Store, active_server: Instance) -> None:
    assert post_action(client, active_server.id, {"migrate": None}).status_code == 202
    migration = migration_of(store, active_server)
    path = f"/v2.1/servers/{active_server.id}/migrations/{migration.id}"
    assert client.delete(path, headers={**OWNER, **mv("2.24")}).status_code == 403
    response = client.delete(path, headers={**ADMIN, **mv("2.24")})
    assert response.status_code == 202
    [cancel] = [a for a in store.list_actions(active_server.id) if a.action == "cold_migration_cancel"]
    assert cancel.request_id == response.headers["x-openstack-request-id"]
    assert store.get_migration(migration.id).status == "cancelling"


def test_cancel__once_the_copy_began_is_409_and_changes_nothing(
        client: FlaskClient, store: Store, active_server: Instance) -> None:
    assert post_action(client, active_server.id, {"migrate": None}).status_code == 202
    migration = migration_of(store, active_server)
    store.update_migration(migration.id, lambda m: setattr(m, "status", "migrating"))
    set_fields(store, active_server.id, task_state="resize_migrating")  # as the copy step leaves it
    response = client.delete(f"/v2.1/servers/{active_server.id}/migrations/{migration.id}",
                             headers={**ADMIN, **mv("2.24")})
    assert response.status_code == 409 and fault(response)[0] == "conflictingRequest"
    assert store.get_migration(migration.id).status == "migrating"
    assert [a.action for a in store.list_actions(active_server.id)] == ["migrate", "create"]
