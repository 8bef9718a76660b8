"""The image proxy: Nova's image view, its filters, and delete."""
from __future__ import annotations

import pytest

from compute.models import Image
from tests.api.conftest import ADMIN, IMAGE_ID, OTHER, OWNER, UNKNOWN_ID, fault

BACKUP_ID = "11111111-2222-4333-8444-555555555555"
SAVING_ID = "66666666-7777-4888-8999-000000000000"


@pytest.fixture
def images(store, active_server):
    store.put_image(Image(id=BACKUP_ID, name="nightly", owner="demo", visibility="private", status="active",
                          min_ram=512, min_disk=1, size=1024, created_at="2030-01-02T00:00:00.000000",
                          updated_at="2030-01-02T00:00:00.000000",
                          properties={"instance_uuid": active_server.id, "image_type": "backup",
                                      "backup_type": "daily"}))
    store.put_image(Image(id=SAVING_ID, name="in-progress", owner="demo", visibility="private", status="saving",
                          progress=40, created_at="2030-01-03T00:00:00.000000",
                          updated_at="2030-01-03T00:00:00.000000"))
    return active_server


def ids(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [i["id"] for i in response.get_json()["images"]]


def test_list__id_name_links_newest_first_without_a_microversion(client, images):
    response = client.get("/v2.1/images", headers=OWNER)
    assert ids(response) == [SAVING_ID, BACKUP_ID, IMAGE_ID]
    assert set(response.get_json()["images"][0]) == {"id", "name", "links"}
    assert response.headers["OpenStack-API-Version"] == "compute 2.1"


def test_detail__nova_image_view(client, images):
    found = {i["id"]: i for i in client.get("/v2.1/images/detail", headers=OWNER).get_json()["images"]}
    backup = found[BACKUP_ID]
    assert backup["status"] == "ACTIVE" and backup["progress"] == 100
    assert (backup["minRam"], backup["minDisk"], backup["OS-EXT-IMG-SIZE:size"]) == (512, 1, 1024)
    assert backup["created"] == "2030-01-02T00:00:00Z" and backup["updated"] == "2030-01-02T00:00:00Z"
    assert backup["metadata"]["image_type"] == "backup"
    assert backup["server"]["id"] == images.id
    assert backup["server"]["links"][0]["href"] == f"http://localhost/v2.1/servers/{images.id}"
    assert (found[SAVING_ID]["status"], found[SAVING_ID]["progress"]) == ("SAVING", 40)
    assert "server" not in found[IMAGE_ID]


@pytest.mark.parametrize("status, expected", [
    ("queued", ("SAVING", 25)), ("killed", ("ERROR", 0)), ("pending_delete", ("DELETED", 0)), ("odd", ("UNKNOWN", 0)),
])
def test_status__glance_to_nova(client, store, status, expected):
    store.put_image(Image(id=BACKUP_ID, name="x", status=status))
    image = client.get(f"/v2.1/images/{BACKUP_ID}", headers=ADMIN).get_json()["image"]
    assert (image["status"], image["progress"]) == expected


@pytest.mark.parametrize("query, expected", [
    ("?name=nightly", [BACKUP_ID]),
    ("?status=SAVING", [SAVING_ID]),
    ("?status=active", [BACKUP_ID, IMAGE_ID]),
    ("?type=backup", [BACKUP_ID]),
    ("?minRam=256", [BACKUP_ID]),
    ("?minDisk=1", [BACKUP_ID]),
    ("?changes-since=2030-01-02T12:00:00Z", [SAVING_ID]),
    (f"?id=in:{BACKUP_ID},{IMAGE_ID}", [BACKUP_ID, IMAGE_ID]),
    (f"?id={IMAGE_ID}", [IMAGE_ID]),
    ("?limit=1", [SAVING_ID]),
    (f"?marker={SAVING_ID}", [BACKUP_ID, IMAGE_ID]),
    ("?unknown=1", [SAVING_ID, BACKUP_ID, IMAGE_ID]),
])
def test_filters(client, images, query, expected):
    assert ids(client.get(f"/v2.1/images/detail{query}", headers=OWNER)) == expected


def test_filter__server(client, images):
    assert ids(client.get(f"/v2.1/images/detail?server={images.id}", headers=OWNER)) == [BACKUP_ID]
    assert ids(client.get(f"/v2.1/images?server=http://localhost/servers/{images.id}", headers=OWNER)) == [BACKUP_ID]


@pytest.mark.parametrize("query", ["?minRam=x", "?changes-since=soon", "?limit=-2", f"?marker={UNKNOWN_ID}"])
def test_bad_filters_are_400(client, images, query):
    assert client.get(f"/v2.1/images/detail{query}", headers=OWNER).status_code == 400


def test_private_images_are_visible_to_their_project_only(client, images):
    assert ids(client.get("/v2.1/images", headers=OTHER)) == [IMAGE_ID]
    assert client.get(f"/v2.1/images/{BACKUP_ID}", headers=OTHER).status_code == 404


def test_show__404(client):
    response = client.get(f"/v2.1/images/{UNKNOWN_ID}", headers=OWNER)
    assert fault(response) == ("itemNotFound", 404, f"Image {UNKNOWN_ID} could not be found.")


def test_delete__owner_204_then_gone(client, store, images):
    assert client.delete(f"/v2.1/images/{BACKUP_ID}", headers=OTHER).status_code == 404
    response = client.delete(f"/v2.1/images/{BACKUP_ID}", headers=OWNER)
    assert response.status_code == 204
    assert store.get_image(BACKUP_ID) is None
    assert client.delete(f"/v2.1/images/{BACKUP_ID}", headers=OWNER).status_code == 404


def test_delete__public_image_only_by_admin(client, store):
    assert client.delete(f"/v2.1/images/{IMAGE_ID}", headers=OWNER).status_code == 404
    assert client.delete(f"/v2.1/images/{IMAGE_ID}", headers=ADMIN).status_code == 204
