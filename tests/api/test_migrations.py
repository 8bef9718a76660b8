"""A server's migrations (list, show) and GET /os-migrations, per microversion.

Records are made the way the service makes them (a live migration accepted over HTTP, a cold one
written as the cold-migration flow writes it), then moved to the status a test needs. Force-complete
and abort have their own files (test_live_migration_force_complete.py, test_live_migration_abort.py).
"""
from __future__ import annotations

import itertools
from typing import Any

import pytest

from compute.models import Migration
from tests.api.conftest import (
    ADMIN,
    HOST,
    OTHER,
    OWNER,
    abort,
    activate,
    cold_record,
    fault,
    force,
    mv,
    set_status,
    start_live,
)

LIVE_KEYS = {"created_at", "dest_compute", "dest_host", "dest_node", "disk_processed_bytes", "disk_remaining_bytes",
             "disk_total_bytes", "id", "memory_processed_bytes", "memory_remaining_bytes", "memory_total_bytes",
             "server_uuid", "source_compute", "source_node", "status", "updated_at"}
OS_KEYS = {"created_at", "dest_compute", "dest_host", "dest_node", "id", "instance_uuid", "new_instance_type_id",
           "old_instance_type_id", "source_compute", "source_node", "status", "updated_at"}


def stamp_updated_at(store: Any, migration: Migration, value: str) -> None:
    """Store.update_migration stamps the current time; these tests need chosen times."""
    record = store.get_migration(migration.id).model_copy(update={"updated_at": value})
    store.overwrite_migration(record)


def get(client: Any, path: str, version: str = "2.80", headers: dict[str, str] = ADMIN) -> Any:
    return client.get(f"/v2.1{path}", headers={**headers, **mv(version)})


# ---- GET /servers/{id}/migrations[/{id}] ----------------------------------------------------------
def test_list__only_live_migrations_in_progress_with_novas_keys(client, store, active_server, running):
    cold_record(store, active_server.id, status="migrating")
    response = get(client, f"/servers/{active_server.id}/migrations", "2.23")
    assert response.status_code == 200
    [item] = response.get_json()["migrations"]
    assert set(item) == LIVE_KEYS
    assert (item["id"], item["status"], item["server_uuid"], item["dest_compute"], item["memory_processed_bytes"]) == (
        running.id, "running", active_server.id, "compute-kvm-2", 256)
    for status in ("accepted", "completed", "cancelled"):
        set_status(store, running, status)
        assert get(client, f"/servers/{active_server.id}/migrations").get_json() == {"migrations": []}


@pytest.mark.parametrize(("version", "extra"), [("2.58", set()), ("2.59", {"uuid"}),
                                                ("2.80", {"uuid", "user_id", "project_id"})])
def test_list_and_show__keys_grow_with_the_microversion(client, active_server, running, version, extra):
    [item] = get(client, f"/servers/{active_server.id}/migrations", version).get_json()["migrations"]
    shown = get(client, f"/servers/{active_server.id}/migrations/{running.id}", version).get_json()["migration"]
    assert set(item) == set(shown) == LIVE_KEYS | extra
    if "user_id" in extra:
        assert (shown["user_id"], shown["project_id"], shown["uuid"]) == ("admin", "admin", running.uuid)


def test_list_and_show__below_2_23_do_not_exist(client, active_server, running):
    for path in (f"/servers/{active_server.id}/migrations", f"/servers/{active_server.id}/migrations/{running.id}"):
        response = get(client, path, "2.22")
        assert (response.status_code, fault(response)[2]) == (404, "The resource could not be found.")


def test_show__404_with_novas_reason(client, store, active_server, running):
    sid = active_server.id
    cold = cold_record(store, sid, status="migrating")
    cases = {"424242": f"In-progress live migration 424242 is not found for server {sid}.",
             "abc": f"In-progress live migration abc is not found for server {sid}.",
             str(cold.id): f"Migration {cold.id} for server {sid} is not live-migration."}
    for migration_id, message in cases.items():
        response = get(client, f"/servers/{sid}/migrations/{migration_id}")
        assert (response.status_code, fault(response)[2]) == (404, message)
    set_status(store, running, "completed")
    response = get(client, f"/servers/{sid}/migrations/{running.id}")
    assert (response.status_code, fault(response)[2]) == (
        404, f"Live migration {running.id} for server {sid} is not in progress.")


def test_show__a_migration_of_another_server_is_not_found(client, store, make_server, running):
    other = activate(store, make_server("other").id)
    response = get(client, f"/servers/{other.id}/migrations/{running.id}")
    assert response.status_code == 404


def test_list_and_show__unknown_query_is_400_from_2_102(client, active_server, running):
    for path in (f"/servers/{active_server.id}/migrations", f"/servers/{active_server.id}/migrations/{running.id}"):
        assert get(client, path + "?x=1", "2.101").status_code == 200
        assert get(client, path + "?x=1", "2.102").status_code == 400


def test_list_and_show__admin_only_with_lookup_first(client, active_server, running):
    for name, path in (("index", ""), ("show", f"/{running.id}")):
        response = get(client, f"/servers/{active_server.id}/migrations{path}", headers=OWNER)
        assert (response.status_code, fault(response)[2]) == (
            403, f"Policy doesn't allow os_compute_api:servers:migrations:{name} to be performed.")
        assert get(client, f"/servers/{active_server.id}/migrations{path}", headers=OTHER).status_code == 404


# ---- GET /os-migrations ----------------------------------------------------------------------------
@pytest.fixture
def history(client, store, active_server, make_server):
    """Oldest first: a finished cold migration, a hidden one, a running live migration, a cold one of another server."""
    other = activate(store, make_server("other").id, host="compute-kvm-3")
    finished = cold_record(store, active_server.id, created_at="2030-01-01T00:00:00.000000",
                           updated_at="2030-01-01T00:00:00.000000")
    hidden = cold_record(store, active_server.id, status="error", hidden=True, created_at="2030-01-02T00:00:00.000000")
    live = start_live(client, store, active_server.id)
    live = set_status(store, live, "running", created_at="2030-01-03T00:00:00.000000")
    elsewhere = cold_record(store, other.id, status="migrating", source_compute="compute-kvm-3",
                            dest_compute=HOST, user_id="bob", project_id="other",
                            created_at="2030-01-04T00:00:00.000000")
    return {"finished": finished, "hidden": hidden, "live": live, "elsewhere": elsewhere}


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [m["id"] for m in response.get_json()["migrations"]]


def test_os_migrations__every_type_newest_first_hidden_omitted(client, history):
    h = history
    assert ids(get(client, "/os-migrations", "2.59")) == [h["elsewhere"].id, h["live"].id, h["finished"].id]


@pytest.mark.parametrize(("version", "extra"), [
    ("2.1", set()), ("2.23", {"migration_type"}), ("2.59", {"migration_type", "uuid"}),
    ("2.80", {"migration_type", "uuid", "user_id", "project_id"})])
def test_os_migrations__keys_per_microversion(client, history, version, extra):
    items = {m["id"]: m for m in get(client, "/os-migrations", version).get_json()["migrations"]}
    finished, live = items[history["finished"].id], items[history["live"].id]
    assert set(finished) == OS_KEYS | extra
    assert (finished["old_instance_type_id"], finished["new_instance_type_id"]) == (1, 1)
    if "migration_type" in extra:
        assert (finished["migration_type"], live["migration_type"]) == ("migration", "live-migration")
        server = live["instance_uuid"]
        assert live["links"] == [
            {"rel": "self", "href": f"http://localhost/v2.1/servers/{server}/migrations/{live['id']}"},
            {"rel": "bookmark", "href": f"http://localhost/servers/{server}/migrations/{live['id']}"}]
        assert set(live) == OS_KEYS | extra | {"links"}
    else:
        assert set(live) == OS_KEYS


@pytest.mark.parametrize(("query", "expected"), [
    ("?host=compute-kvm-3", ["elsewhere"]),
    (f"?host={HOST}", ["elsewhere", "live", "finished"]),
    ("?host=compute-kvm-3&source_compute=compute-kvm-1", ["elsewhere"]),
    (f"?source_compute={HOST}", ["live", "finished"]),
    ("?status=running", ["live"]),
    ("?migration_type=migration", ["elsewhere", "finished"]),
    ("?migration_type=live-migration", ["live"]),
    ("?hidden=0", ["elsewhere", "live", "finished"]),
    ("?hidden=1", []),
    ("?user_id=bob", ["elsewhere"]),
    ("?project_id=demo", ["finished"]),
])
def test_os_migrations__filters(client, history, query, expected):
    assert ids(get(client, "/os-migrations" + query)) == [history[name].id for name in expected]


def test_os_migrations__instance_uuid_filter(client, history, active_server):
    assert ids(get(client, f"/os-migrations?instance_uuid={active_server.id}")) == [
        history["live"].id, history["finished"].id]


def test_os_migrations__paging_from_2_59(client, history):
    h = history
    first = get(client, "/os-migrations?limit=2", "2.59").get_json()
    assert [m["id"] for m in first["migrations"]] == [h["elsewhere"].id, h["live"].id]
    assert first["migrations_links"] == [{
        "rel": "next", "href": f"http://localhost/v2.1/os-migrations?limit=2&marker={h['live'].uuid}"}]
    second = get(client, f"/os-migrations?limit=2&marker={h['live'].uuid}", "2.59")
    assert ids(second) == [h["finished"].id] and "migrations_links" not in second.get_json()
    # a hidden marker still places the page, as Nova's marker row does
    assert ids(get(client, f"/os-migrations?marker={h['hidden'].uuid}", "2.59")) == [h["finished"].id]
    response = get(client, "/os-migrations?marker=nope", "2.59")
    assert (response.status_code, fault(response)[2]) == (400, "Marker nope could not be found.")


def test_os_migrations__before_2_59_paging_and_unknown_parameters_are_ignored(client, history):
    assert len(ids(get(client, "/os-migrations?limit=1&marker=nope&bogus=1&changes-since=2099-01-01", "2.58"))) == 3


def test_os_migrations__unknown_and_later_parameters_are_400(client, history):
    for version, query in (("2.59", "?bogus=1"), ("2.59", "?changes-before=2030-01-01"), ("2.65", "?user_id=x"),
                           ("2.79", "?project_id=x")):
        assert get(client, "/os-migrations" + query, version).status_code == 400, (version, query)


def test_os_migrations__changes_since_and_before(client, store, history):
    h = history
    for name, day in (("finished", "2030-01-01"), ("live", "2030-01-05"), ("elsewhere", "2030-01-09")):
        stamp_updated_at(store, h[name], f"{day}T00:00:00.000000")
    assert ids(get(client, "/os-migrations?changes-since=2030-01-05T00:00:00Z", "2.59")) == [
        h["elsewhere"].id, h["live"].id]
    assert ids(get(client, "/os-migrations?changes-since=2030-01-02&changes-before=2030-01-06", "2.66")) == [
        h["live"].id]
    response = get(client, "/os-migrations?changes-since=2030-01-06&changes-before=2030-01-02", "2.66")
    assert (response.status_code, fault(response)[2]) == (
        400, "The value of changes-since must be less than or equal to changes-before.")


def test_os_migrations__admin_only(client, history):
    response = get(client, "/os-migrations", headers=OWNER)
    assert (response.status_code, fault(response)[2]) == (
        403, "Policy doesn't allow os_compute_api:os-migrations:index to be performed.")


ODD_QUERIES = ["?limit=-1", "?limit=²", "?limit=", "?marker=", "?marker=%00", "?changes-since=x",
               "?changes-before=2030-13-45", "?host=", "?hidden=²", "?status=&status=", "?limit=99999999999999999999",
               "?instance_uuid=%00", "?user_id=é"]


def test_odd_requests__never_500(client, active_server, running):
    for query, version in itertools.product(ODD_QUERIES, ("2.1", "2.59", "2.66", "2.80", "2.104")):
        response = get(client, "/os-migrations" + query, version)
        assert response.status_code < 500, (query, version, response.get_data(as_text=True))
    for odd_id, version in itertools.product(["x", "-1", "²", "9" * 400, "%00", "1.5"], ("2.24", "2.65", "2.104")):
        for response in (get(client, f"/servers/{active_server.id}/migrations/{odd_id}", version),
                         force(client, active_server.id, odd_id, version=version),
                         abort(client, active_server.id, odd_id, version)):
            assert response.status_code < 500, (odd_id, version, response.get_data(as_text=True))
