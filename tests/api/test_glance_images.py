"""The image service (/image): Glance v2's image API over the records the compute side keeps."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compute.actions.create_backup import create_backup
from compute.context import RequestContext
from compute.models import Image
from tests.api.conftest import ADMIN, IMAGE_ID, OTHER, OWNER, UNKNOWN_ID, activate

BACKUP_ID = "11111111-2222-4333-8444-555555555555"
SAVING_ID = "66666666-7777-4888-8999-000000000000"
SHARED_ID = "22222222-3333-4444-8555-666666666666"
COMMUNITY_ID = "33333333-4444-4555-8666-777777777777"
HIDDEN_ID = "44444444-5555-4666-8777-888888888888"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
PATCH_20 = {"Content-Type": "application/openstack-images-v2.0-json-patch"}


def stamp(day: int) -> str:
    return f"2030-01-{day:02d}T00:00:00.000000"


@pytest.fixture
def images(store):
    """demo's backup (active) and upload (saving), other's images shared with demo and in the community."""
    store.put_image(Image(id=BACKUP_ID, name="nightly", owner="demo", visibility="private", status="active",
                          min_ram=512, min_disk=1, size=1024, created_at=stamp(2), updated_at=stamp(2),
                          tags=["keep"], properties={"image_type": "backup", "backup_type": "daily",
                                                     "instance_uuid": UNKNOWN_ID}))
    store.put_image(Image(id=SAVING_ID, name="in-progress", owner="demo", visibility="private", status="saving",
                          size=0, progress=40, created_at=stamp(3), updated_at=stamp(3)))
    store.put_image(Image(id=SHARED_ID, name="shared-with-demo", owner="other", visibility="shared",
                          members={"demo": "pending"}, created_at=stamp(4), updated_at=stamp(4)))
    store.put_image(Image(id=COMMUNITY_ID, name="community", owner="other", visibility="community",
                          created_at=stamp(5), updated_at=stamp(5)))
    store.put_image(Image(id=HIDDEN_ID, name="hidden", owner="demo", visibility="public", os_hidden=True,
                          created_at=stamp(6), updated_at=stamp(6)))


def listing(client, query="", headers=OWNER):
    response = client.get(f"/image/v2/images{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def ids(client, query="", headers=OWNER):
    return [i["id"] for i in listing(client, query, headers)["images"]]


def glance_error(response):
    body = response.get_json()
    assert set(body) == {"message", "code", "title"}, body
    assert body["code"].startswith(str(response.status_code))
    return response.status_code, body["message"]


def patch(client, image_id, ops, headers=OWNER, content=PATCH):
    return client.patch(f"/image/v2/images/{image_id}", data=json.dumps(ops), headers={**headers, **content})


# ---- discovery and schemas -----------------------------------------------------------------------------
@pytest.mark.parametrize("path, code", [("/image", 300), ("/image/", 300), ("/image/versions", 200),
                                        ("/image/v2/", 300)])
def test_versions__public_and_point_at_v2(client, path, code):
    response = client.get(path)
    assert response.status_code == code
    versions = response.get_json()["versions"]
    assert versions[0]["status"] == "CURRENT" and versions[0]["id"].startswith("v2.")
    assert {v["links"][0]["href"] for v in versions} == {"http://localhost/image/v2/"}


def test_schemas__image_and_images(client):
    image = client.get("/image/v2/schemas/image", headers=OWNER).get_json()
    assert image["name"] == "image" and image["additionalProperties"] == {"type": "string"}
    assert {"id", "name", "status", "visibility", "tags", "checksum", "size"} <= set(image["properties"])
    images = client.get("/image/v2/schemas/images", headers=OWNER).get_json()
    assert images["name"] == "images" and images["properties"]["images"]["items"]["name"] == "image"


def test_without_a_token__401(client):
    assert glance_error(client.get("/image/v2/images")) == (401, "The request you have made requires authentication.")


# ---- the image body -----------------------------------------------------------------------------------
def test_show__glance_body_with_properties_flattened(client, images):
    response = client.get(f"/image/v2/images/{BACKUP_ID}", headers=OWNER)
    assert response.status_code == 200
    image = response.get_json()
    assert image["status"] == "active" and image["visibility"] == "private" and image["owner"] == "demo"
    assert (image["size"], image["min_ram"], image["min_disk"]) == (1024, 512, 1)
    assert (image["disk_format"], image["container_format"]) == ("qcow2", "bare")
    assert len(image["checksum"]) == 32 and image["os_hash_algo"] == "sha512" and len(image["os_hash_value"]) == 128
    assert image["created_at"] == "2030-01-02T00:00:00Z" and image["updated_at"] == "2030-01-02T00:00:00Z"
    assert image["image_type"] == "backup" and image["backup_type"] == "daily"
    assert "properties" not in image and image["tags"] == ["keep"]
    assert image["self"] == f"/v2/images/{BACKUP_ID}" and image["file"] == f"/v2/images/{BACKUP_ID}/file"
    assert image["schema"] == "/v2/schemas/image" and image["protected"] is False and image["os_hidden"] is False


def test_show__an_image_not_uploaded_has_no_size_or_checksum(client, images):
    image = client.get(f"/image/v2/images/{SAVING_ID}", headers=OWNER).get_json()
    assert image["status"] == "saving"
    assert (image["size"], image["checksum"], image["os_hash_value"]) == (None, None, None)


def test_show__unknown_404(client):
    assert glance_error(client.get(f"/image/v2/images/{UNKNOWN_ID}", headers=OWNER)) == (
        404, f"No image found with ID {UNKNOWN_ID}")


def test_nova_proxy__reads_the_same_records(client, images):
    assert client.get(f"/v2.1/images/{BACKUP_ID}", headers=OWNER).get_json()["image"]["status"] == "ACTIVE"
    patch(client, BACKUP_ID, [{"op": "replace", "path": "/name", "value": "renamed"}])
    assert client.get(f"/v2.1/images/{BACKUP_ID}", headers=OWNER).get_json()["image"]["name"] == "renamed"


# ---- visibility and ownership ---------------------------------------------------------------------------------
def test_list__member_sees_public_own_and_accepted_shares_newest_first(client, images, store):
    assert ids(client) == [SAVING_ID, BACKUP_ID, IMAGE_ID]  # the share is still pending
    store.update_image(SHARED_ID, lambda i: i.members.update(demo="accepted"))
    assert ids(client) == [SHARED_ID, SAVING_ID, BACKUP_ID, IMAGE_ID]


@pytest.mark.parametrize("query, expected", [
    ("?member_status=pending", [SHARED_ID, SAVING_ID, BACKUP_ID, IMAGE_ID]),
    ("?member_status=all&visibility=shared", [SHARED_ID]),
    ("?visibility=community", [COMMUNITY_ID]),
    ("?visibility=public", [IMAGE_ID]),
    ("?visibility=private", [SAVING_ID, BACKUP_ID]),
    ("?visibility=all", [COMMUNITY_ID, SAVING_ID, BACKUP_ID, IMAGE_ID]),
    ("?os_hidden=true", [HIDDEN_ID]),
])
def test_list__visibility_member_status_hidden(client, images, query, expected):
    assert ids(client, query) == expected


def test_list__other_project_sees_its_own_and_public(client, images):
    assert ids(client, headers=OTHER) == [COMMUNITY_ID, SHARED_ID, IMAGE_ID]  # its community image too
    assert client.get(f"/image/v2/images/{BACKUP_ID}", headers=OTHER).status_code == 404


def test_list__admin_sees_every_image(client, images):
    assert ids(client, headers=ADMIN) == [COMMUNITY_ID, SHARED_ID, SAVING_ID, BACKUP_ID, IMAGE_ID]


def test_show__a_member_sees_a_share_whatever_its_status_and_anyone_a_community_image(client, images):
    assert client.get(f"/image/v2/images/{SHARED_ID}", headers=OWNER).status_code == 200
    assert client.get(f"/image/v2/images/{COMMUNITY_ID}", headers=OWNER).status_code == 200
    assert client.get(f"/image/v2/images/{SHARED_ID}", headers={"X-Auth-Token": "eve:third"}).status_code == 404


def test_deleted_records_are_never_shown(client, store):
    store.put_image(Image(id=BACKUP_ID, name="gone", status="deleted"))
    assert client.get(f"/image/v2/images/{BACKUP_ID}", headers=ADMIN).status_code == 404
    assert BACKUP_ID not in ids(client, "?status=deleted", headers=ADMIN)


# ---- filters, sorting, paging ------------------------------------------------------------------------------------
@pytest.mark.parametrize("query, expected", [
    ("?name=nightly", [BACKUP_ID]),
    (f"?id=in:{BACKUP_ID},{IMAGE_ID}", [BACKUP_ID, IMAGE_ID]),
    ("?status=saving", [SAVING_ID]),
    ("?status=in:saving,active", [SAVING_ID, BACKUP_ID, IMAGE_ID]),
    ("?owner=demo", [SAVING_ID, BACKUP_ID]),
    ("?tag=keep", [BACKUP_ID]),
    ("?tag=keep&tag=other", []),
    ("?image_type=backup", [BACKUP_ID]),
    ("?backup_type=daily&image_type=backup", [BACKUP_ID]),
    ("?os_distro=cirros", [IMAGE_ID]),
    ("?protected=false", [SAVING_ID, BACKUP_ID, IMAGE_ID]),
    ("?protected=true", []),
    ("?size_min=1025", [IMAGE_ID]),
    ("?size_max=1024", [BACKUP_ID]),
    ("?min_ram=512", [BACKUP_ID]),
    ("?created_at=gte:2030-01-02T00:00:00Z", [SAVING_ID, BACKUP_ID]),
    ("?created_at=lt:2030-01-03T00:00:00Z&owner=demo", [BACKUP_ID]),
    ("?updated_at=eq:2030-01-03T00:00:00Z", [SAVING_ID]),
    ("?disk_format=qcow2&container_format=bare", [SAVING_ID, BACKUP_ID, IMAGE_ID]),
])
def test_list__filters(client, images, query, expected):
    assert ids(client, query) == expected


@pytest.mark.parametrize("query, expected", [
    ("?sort_key=name&sort_dir=asc", [IMAGE_ID, SAVING_ID, BACKUP_ID]),
    ("?sort_key=name", [BACKUP_ID, SAVING_ID, IMAGE_ID]),
    ("?sort=name:asc", [IMAGE_ID, SAVING_ID, BACKUP_ID]),
    ("?sort=status:asc,name:desc", [BACKUP_ID, IMAGE_ID, SAVING_ID]),
    ("?sort_key=status&sort_key=name&sort_dir=asc&sort_dir=desc", [BACKUP_ID, IMAGE_ID, SAVING_ID]),
    ("?sort=size:asc", [SAVING_ID, BACKUP_ID, IMAGE_ID]),
    ("?sort=created_at:asc", [IMAGE_ID, BACKUP_ID, SAVING_ID]),
])
def test_list__sorting(client, images, query, expected):
    assert ids(client, query) == expected


@pytest.mark.parametrize("query, message", [
    ("?sort_key=min_ram", ("Invalid sort key: min_ram. It must be one of the following: name, status, "
                           "container_format, disk_format, size, id, created_at, updated_at.")),
    ("?sort_dir=up", "Invalid sort direction: up"),
    ("?sort=name:asc&sort_key=name", "Old and new sorting syntax cannot be combined"),
    ("?sort_key=name&sort_key=id&sort_key=status&sort_dir=asc&sort_dir=desc",
     "Number of sort dirs does not match the number of sort keys"),
    ("?limit=x", "limit param must be an integer"),
    ("?limit=-1", "limit param must be positive"),
    (f"?marker={UNKNOWN_ID}", f"No image found with ID {UNKNOWN_ID}"),
    (f"?marker={COMMUNITY_ID}x", f"No image found with ID {COMMUNITY_ID}x"),
    ("?visibility=everyone", "Invalid visibility value: everyone"),
    ("?member_status=maybe", "Invalid status: maybe"),
    ("?protected=yes", "Invalid value 'yes' for 'protected' filter. Valid values are 'true' or 'false'."),
    ("?os_hidden=1", "Invalid value '1' for 'os_hidden' filter. Valid values are 'true' or 'false'."),
])
def test_list__bad_queries_are_400(client, images, query, message):
    assert glance_error(client.get(f"/image/v2/images{query}", headers=OWNER)) == (400, message)


@pytest.mark.parametrize("query", ["?size_min=x", "?created_at=gt:soon", "?limit=" + "9" * 5000])
def test_list__odd_values_never_500(client, images, query):
    assert client.get(f"/image/v2/images{query}", headers=OWNER).status_code in (200, 400)


def test_list__paging_with_next_first_and_schema(client, images):
    page = listing(client, "?limit=2&owner=in:demo,")
    assert [i["id"] for i in page["images"]] == [SAVING_ID, BACKUP_ID]
    assert page["first"] == "/v2/images?limit=2&owner=in%3Ademo%2C" and page["schema"] == "/v2/schemas/images"
    assert page["next"] == f"/v2/images?limit=2&owner=in%3Ademo%2C&marker={BACKUP_ID}"
    second = listing(client, page["next"][len("/v2/images"):])
    assert second["images"] == [] and "next" not in second


def test_list__marker_follows_the_sort_order(client, images):
    assert ids(client, f"?sort=name:asc&marker={SAVING_ID}") == [BACKUP_ID]
    assert ids(client, f"?limit=1&marker={SAVING_ID}") == [BACKUP_ID]
    assert "next" not in listing(client, "?limit=25")


def test_list__default_page_is_25_at_most_1000(client, store):
    for n in range(30):
        store.put_image(Image(id=f"00000000-0000-4000-8000-{n:012d}", name=f"i{n}", created_at=stamp(n % 28 + 1)))
    assert len(ids(client)) == 25 and "next" in listing(client)
    assert len(ids(client, "?limit=5000")) == 31


# ---- delete -----------------------------------------------------------------------------------------------------------
def test_delete__owner_204_then_404(client, store, images):
    assert client.delete(f"/image/v2/images/{BACKUP_ID}", headers=OWNER).status_code == 204
    assert store.get_image(BACKUP_ID) is None
    assert client.get(f"/image/v2/images/{BACKUP_ID}", headers=OWNER).status_code == 404
    assert client.delete(f"/image/v2/images/{BACKUP_ID}", headers=OWNER).status_code == 404


def test_delete__not_visible_404_visible_not_owned_403_admin_204(client, images):
    assert client.delete(f"/image/v2/images/{BACKUP_ID}", headers=OTHER).status_code == 404
    assert glance_error(client.delete(f"/image/v2/images/{IMAGE_ID}", headers=OWNER)) == (
        403, "You are not permitted to delete this image.")
    assert client.delete(f"/image/v2/images/{IMAGE_ID}", headers=ADMIN).status_code == 204


def test_delete__protected_403_until_unprotected(client, images):
    assert patch(client, BACKUP_ID, [{"op": "replace", "path": "/protected", "value": True}]).status_code == 200
    assert glance_error(client.delete(f"/image/v2/images/{BACKUP_ID}", headers=ADMIN)) == (
        403, f"Image {BACKUP_ID} is protected and cannot be deleted.")
    assert client.delete(f"/v2.1/images/{BACKUP_ID}", headers=OWNER).status_code == 403  # the Nova proxy too
    patch(client, BACKUP_ID, [{"op": "replace", "path": "/protected", "value": False}])
    assert client.delete(f"/image/v2/images/{BACKUP_ID}", headers=OWNER).status_code == 204


def test_delete__a_backup_leaves_its_rotation(client, service, store, make_server):
    server = activate(store, make_server("vm").id)
    ctx = RequestContext("alice", "demo", ["member", "reader"])
    image = create_backup(service, ctx, server, name="b", backup_type="daily", rotation=2)
    store.add_backup(server.id, "daily", image)
    assert client.delete(f"/image/v2/images/{image.id}", headers=OWNER).status_code == 204
    assert store.backups_past_rotation(server.id, "daily", 0) == []


# ---- PATCH and tags -----------------------------------------------------------------------------------------------------
def test_patch__name_properties_tags(client, images, store):
    response = patch(client, BACKUP_ID, [
        {"op": "replace", "path": "/name", "value": "weekly"},
        {"op": "add", "path": "/purpose", "value": "audit"},
        {"op": "remove", "path": "/backup_type"},
        {"op": "replace", "path": "/tags", "value": ["a", "b", "a"]},
        {"op": "add", "path": "/min_ram", "value": 1024},
    ])
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["name"], body["purpose"], body["tags"], body["min_ram"]) == ("weekly", "audit", ["a", "b"], 1024)
    assert "backup_type" not in body and body["updated_at"] != "2030-01-02T00:00:00Z"
    record = store.get_image(BACKUP_ID)
    assert record.name == "weekly" and record.properties["purpose"] == "audit" and record.tags == ["a", "b"]


def test_patch__v2_0_syntax(client, images, store):
    response = patch(client, BACKUP_ID, [{"replace": "/name", "value": "old-style"}], content=PATCH_20)
    assert response.status_code == 200 and store.get_image(BACKUP_ID).name == "old-style"
    assert patch(client, BACKUP_ID, [{"add": "/name", "value": "x"}], content=PATCH_20).status_code == 409


@pytest.mark.parametrize("ops, code, message", [
    ([{"op": "replace", "path": "/status", "value": "active"}], 403, "Attribute 'status' is read-only."),
    ([{"op": "replace", "path": "/id", "value": "x"}], 403, "Attribute 'id' is read-only."),
    ([{"op": "add", "path": "/deleted", "value": "x"}], 403, "Attribute 'deleted' is reserved."),
    ([{"op": "remove", "path": "/name"}], 403, "Property name may not be removed."),
    ([{"op": "remove", "path": "/nothing"}], 409, "Property nothing does not exist."),
    ([{"op": "replace", "path": "/nothing", "value": "x"}], 409, "Property nothing does not exist."),
    ([{"op": "replace", "path": "/disk_format", "value": "raw"}], 403,
     "Attribute disk_format can be only replaced for a queued image."),
    ([{"op": "move", "path": "/name"}], 400, "Invalid operation: `move`"),
    ([{"op": "add", "path": "/a/b", "value": "x"}], 400, "Invalid JSON pointer for this resource: '/a/b'"),
    ([{"op": "add", "path": "name", "value": "x"}], 400, 'Pointer `name` does not start with "/".'),
    ([{"op": "add", "path": "/x"}], 400, 'Operation "add" requires a member named "value".'),
    ({"op": "add"}, 400, "Request body must be a JSON array of operation objects."),
])
def test_patch__refusals_change_nothing(client, images, store, ops, code, message):
    before = store.get_image(BACKUP_ID)
    assert glance_error(patch(client, BACKUP_ID, ops)) == (code, message)
    assert store.get_image(BACKUP_ID) == before


@pytest.mark.parametrize("op", [
    {"op": "add", "path": "/x", "value": 1},
    {"op": "replace", "path": "/visibility", "value": "everyone"},
    {"op": "replace", "path": "/protected", "value": "yes"},
    {"op": "replace", "path": "/min_disk", "value": -1},
    {"op": "replace", "path": "/tags", "value": "t"},
])
def test_patch__values_outside_the_schema_are_400(client, images, op):
    assert patch(client, BACKUP_ID, [op]).status_code == 400


def test_patch__wrong_content_type_415_and_other_projects_403_or_404(client, images):
    response = client.patch(f"/image/v2/images/{BACKUP_ID}", json=[], headers=OWNER)
    assert response.status_code == 415
    assert patch(client, BACKUP_ID, [], headers=OTHER).status_code == 404
    assert glance_error(patch(client, IMAGE_ID, [], headers=OWNER)) == (403, "You are not permitted to modify this image.")


def test_tags__put_and_delete(client, images, store):
    assert client.put(f"/image/v2/images/{BACKUP_ID}/tags/new", headers=OWNER).status_code == 204
    assert client.put(f"/image/v2/images/{BACKUP_ID}/tags/new", headers=OWNER).status_code == 204
    assert store.get_image(BACKUP_ID).tags == ["keep", "new"]
    assert client.delete(f"/image/v2/images/{BACKUP_ID}/tags/keep", headers=OWNER).status_code == 204
    assert client.delete(f"/image/v2/images/{BACKUP_ID}/tags/keep", headers=OWNER).status_code == 404
    assert store.get_image(BACKUP_ID).tags == ["new"]
    assert client.put(f"/image/v2/images/{IMAGE_ID}/tags/x", headers=OWNER).status_code == 403


# ---- backups as the image service shows them ------------------------------------------------------------------------------
def test_backup__queued_image_keeps_the_base_formats(client, service, store, make_server):
    server = activate(store, make_server("vm").id)
    image = create_backup(service, RequestContext("alice", "demo", ["member", "reader"]), server, name="b",
                          backup_type="daily", rotation=1)
    body = client.get(f"/image/v2/images/{image.id}", headers=OWNER).get_json()
    assert (body["status"], body["size"], body["checksum"]) == ("queued", None, None)
    assert (body["disk_format"], body["container_format"], body["visibility"]) == ("qcow2", "bare", "private")
    assert body["instance_uuid"] == server.id and body["image_type"] == "backup"


def test_backup__by_admin_of_a_members_server_is_shared_with_that_project(client, service, store, make_server):
    server = activate(store, make_server("vm").id)
    image = create_backup(service, RequestContext("admin", "admin", ["admin", "member", "reader"]), server,
                          name="b", backup_type="daily", rotation=1)
    body = client.get(f"/image/v2/images/{image.id}", headers=OWNER).get_json()
    assert body["visibility"] == "shared" and body["owner"] == "admin" and body["instance_owner"] == "demo"
    assert image.id in ids(client, "?member_status=pending")


# ---- odd input never answers 5xx --------------------------------------------------------------------------------------------
ODD = ["", " ", "x", "-1", "0", "9" * 5000, "in:", "in:,", "a:b", "name:", ":asc", "gt:", "gt:2030-13-45", "true",
       "\u0000", "é", "\ud7ff", "(" * 300, "%", UNKNOWN_ID, BACKUP_ID, "all", "shared", "community", "desc"]
QUERY_KEYS = ["name", "id", "status", "owner", "visibility", "member_status", "tag", "protected", "os_hidden",
              "size_min", "size_max", "created_at", "updated_at", "min_ram", "min_disk", "sort", "sort_key",
              "sort_dir", "limit", "marker", "image_type", "container_format", "disk_format"]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.sampled_from(ODD),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
                        st.sampled_from(["op", "path", "value", "add", "replace", "remove"]), kids, max_size=4),
                    max_leaves=8)
PATHS = st.sampled_from(["/name", "/tags", "/protected", "/visibility", "/min_ram", "/disk_format", "/x", "/a/b",
                         "/status", "/~2", "x", "/", ""])
OPS = st.fixed_dictionaries({"op": st.sampled_from(["add", "replace", "remove", "test"]), "path": PATHS},
                            optional={"value": JSON})


@settings(derandomize=True, database=None, deadline=None, max_examples=300,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.sampled_from(ODD)), max_size=4),
       ops=st.lists(OPS, max_size=3) | JSON, who=st.sampled_from([ADMIN, OWNER, OTHER]))
def test_fuzz__odd_queries_and_patches_never_5xx(client, images, query, ops, who):
    response = client.get("/image/v2/images?" + urlencode(query), headers=who)
    assert response.status_code in (200, 400), (query, response.get_data(as_text=True)[:300])
    for content in (PATCH, PATCH_20):
        response = patch(client, BACKUP_ID, ops, headers=who, content=content)
        assert response.status_code < 500, (ops, response.get_data(as_text=True)[:300])


def test_image_tasks__a_backup_has_no_import_tasks_and_an_unknown_image_is_404(client) -> None:  # noqa: ANN001
    """Tempest's createBackup test waits on this list (wait_for_image_tasks_status)."""
    headers = {"X-Auth-Token": "admin:admin"}
    listed = client.get("/image/v2/images", headers=headers).get_json()["images"]
    response = client.get(f"/image/v2/images/{listed[0]['id']}/tasks", headers=headers)
    assert (response.status_code, response.get_json()) == (200, {"tasks": []})
    missing = client.get("/image/v2/images/00000000-0000-0000-0000-000000000000/tasks", headers=headers)
    assert missing.status_code == 404
