"""createBackup over HTTP: codes, the two response shapes, and the image record behind them."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from compute.errors import QueueUnavailable
from compute.models import Instance
from compute.store import Store
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
)


def backup_body(**overrides: Any) -> dict[str, Any]:
    return {"createBackup": {"name": "Backup 1", "backup_type": "daily", "rotation": 1, **overrides}}


def backups(store: Store, server_id: str) -> list[Any]:
    return [i for i in store.list_images() if i.properties.get("instance_uuid") == server_id]


def test_create_backup__below_2_45_answers_location_and_empty_body(
        client: FlaskClient, active_server: Instance, store: Store) -> None:
    response = post_action(client, active_server.id, backup_body(), OWNER)
    assert response.status_code == 202
    assert response.data == b""
    [image] = backups(store, active_server.id)
    assert response.headers["Location"] == f"http://localhost/v2.1/images/{image.id}"
    assert image.status == "queued" and image.name == "Backup 1"
    assert store.get_instance(active_server.id).task_state == "image_backup"
    [action] = [a for a in store.list_actions(active_server.id) if a.action == "createBackup"]
    assert action.request_id == response.headers["x-openstack-request-id"]


def test_create_backup__rotation_zero_below_2_45_has_no_location(client: FlaskClient, active_server: Instance) -> None:
    response = post_action(client, active_server.id, backup_body(rotation=0), OWNER)
    assert response.status_code == 202 and "Location" not in response.headers


def test_create_backup__from_2_45_answers_the_image_id(
        client: FlaskClient, active_server: Instance, store: Store) -> None:
    response = post_action(client, active_server.id, backup_body(rotation="0"), {**OWNER, **mv("2.45")})
    assert response.status_code == 202 and "Location" not in response.headers
    [image] = backups(store, active_server.id)
    assert response.get_json() == {"image_id": image.id}


def test_create_backup__image_is_served_by_the_image_proxy(client: FlaskClient, active_server: Instance) -> None:
    image_id = post_action(client, active_server.id, backup_body(), {**OWNER, **mv("2.45")}).get_json()["image_id"]
    shown = client.get(f"/v2.1/images/{image_id}", headers=OWNER).get_json()["image"]
    assert shown["status"] == "SAVING"
    assert shown["server"]["id"] == active_server.id
    assert shown["metadata"]["image_type"] == "backup" and shown["metadata"]["backup_type"] == "daily"


@pytest.mark.parametrize("bad", [
    {"rotation": -1}, {"rotation": 1.5}, {"rotation": "abc"}, {"rotation": True}, {"name": ""},
    {"name": " padded"}, {"metadata": {"k": 1}}, {"metadata": {"bad/key": "v"}}, {"extra": 1},
])
def test_create_backup__bad_bodies_are_400_and_change_nothing(
        client: FlaskClient, active_server: Instance, store: Store, bad: dict[str, Any]) -> None:
    response = post_action(client, active_server.id, backup_body(**bad), OWNER)
    assert response.status_code == 400, response.get_json()
    assert fault(response)[0] == "badRequest"
    assert backups(store, active_server.id) == []
    assert store.get_instance(active_server.id).task_state is None


def test_create_backup__missing_field_is_400_even_for_an_unknown_server(client: FlaskClient) -> None:
    response = post_action(client, UNKNOWN_ID, {"createBackup": {"name": "b", "backup_type": "daily"}}, OWNER)
    assert response.status_code == 400
    assert "'rotation' is a required property" in fault(response)[2]


def test_create_backup__metadata_may_not_override_the_backup_properties(
        client: FlaskClient, active_server: Instance, store: Store) -> None:
    response = post_action(client, active_server.id, backup_body(metadata={"instance_uuid": "x"}), OWNER)
    assert response.status_code == 400 and "instance_uuid" in fault(response)[2]
    assert backups(store, active_server.id) == []


def test_create_backup__metadata_quota_at_every_microversion(client: FlaskClient, active_server: Instance,
                                                              store: Store) -> None:
    """Nova checks it below 2.39 and leaves it to Glance above; there is no Glance here (README)."""
    many = {f"k{i}": "v" for i in range(129)}
    for version in ("2.38", "2.39"):
        response = post_action(client, active_server.id, backup_body(metadata=many), {**OWNER, **mv(version)})
        assert fault(response) == ("forbidden", 403, "Image metadata limit exceeded")
    assert backups(store, active_server.id) == []


@pytest.mark.parametrize("vm_state,task_state,code", [
    ("building", None, 409), ("error", None, 409), ("active", "migrating", 409),
    ("stopped", None, 202), ("paused", None, 202), ("suspended", None, 202),
])
def test_create_backup__state_checks(client: FlaskClient, active_server: Instance, store: Store,
                                     vm_state: str, task_state: str | None, code: int) -> None:
    set_fields(store, active_server.id, vm_state=vm_state, task_state=task_state)
    response = post_action(client, active_server.id, backup_body(), OWNER)
    assert response.status_code == code
    if code == 409:
        assert fault(response)[0] == "conflictingRequest"
        assert backups(store, active_server.id) == []


def test_create_backup__volume_backed_is_400(client: FlaskClient, active_server: Instance, store: Store) -> None:
    set_fields(store, active_server.id, volume_backed=True)
    response = post_action(client, active_server.id, backup_body(), OWNER)
    assert fault(response) == ("badRequest", 400, "Backup is not supported for volume-backed instances.")


def test_create_backup__locked_is_409_for_the_owner_and_allowed_for_admin(
        client: FlaskClient, active_server: Instance, store: Store) -> None:
    set_fields(store, active_server.id, locked=True)
    assert post_action(client, active_server.id, backup_body(), OWNER).status_code == 409
    assert post_action(client, active_server.id, backup_body(), ADMIN).status_code == 202


@pytest.mark.parametrize("caller,code", [(ADMIN, 202), (OWNER, 202), (OTHER, 404), (NOBODY, 401)])
def test_create_backup__policy_admin_or_owner(client: FlaskClient, active_server: Instance,
                                              caller: dict[str, str], code: int) -> None:
    assert post_action(client, active_server.id, backup_body(), caller).status_code == code


def test_create_backup__queue_down_is_503_and_leaves_no_image(
        client: FlaskClient, active_server: Instance, store: Store, enqueuer: Any) -> None:
    enqueuer.fail_with = QueueUnavailable("broker down")
    response = post_action(client, active_server.id, backup_body(), OWNER)
    assert response.status_code == 503 and fault(response)[0] == "serviceUnavailable"
    assert backups(store, active_server.id) == []
    assert store.get_instance(active_server.id).task_state is None
    assert [a.action for a in store.list_actions(active_server.id)] == ["create"]


@pytest.mark.parametrize("rotation", [10**30, "9" * 40])
def test_create_backup__a_huge_rotation_is_refused(
        client: FlaskClient, active_server: Instance, store: Store, rotation: Any) -> None:
    """Above [quota] max_backup_rotation (32) is a 400 (tests/api/test_quota_sets.py has the cap's cases)."""
    response = post_action(client, active_server.id, backup_body(rotation=rotation), OWNER)
    assert response.status_code == 400
    assert backups(store, active_server.id) == []
