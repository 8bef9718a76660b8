"""os-migrateLive over HTTP: the body per microversion, the check order, policy, and the pre-2.34 wait.

Most tests need no worker: from 2.34 the answer is a 202 before anything runs. The pre-2.34
tests use ``engine_client``, whose waits deliver the queued flow in-process instead of sleeping.
"""
from __future__ import annotations

import itertools
from typing import Any

import pytest

from api.app import create_app
from api.views.live_migrate import TIMEOUT_MESSAGE
from compute.actions import live_migrate
from tests.api.conftest import (
    ADMIN,
    HOST,
    NOBODY,
    OTHER,
    OWNER,
    UNKNOWN_ID,
    fault,
    mv,
    post_action,
    set_fields,
)
from tests.support.engine import build_engine

AUTO = {"host": None, "block_migration": "auto"}
V21 = {"host": None, "block_migration": False, "disk_over_commit": False}


def live(client: Any, server_id: str, args: Any, version: str = "2.34", headers: dict[str, str] = ADMIN) -> Any:
    return post_action(client, server_id, {"os-migrateLive": args}, {**headers, **mv(version)})


@pytest.fixture
def engine_client(store, fleet, settings, monkeypatch):
    """A client whose service queues into an in-process engine, driven while the API waits."""
    engine = build_engine(store, fleet, settings)
    monkeypatch.setattr(live_migrate, "pause", lambda _seconds: engine.deliver_one())
    return create_app(settings, engine.service).test_client()


# ---- 202 and what it leaves behind -----------------------------------------------------------------
def test_accepted__empty_202_server_migrating_migration_accepted_and_action_recorded(client, store, active_server):
    response = live(client, active_server.id, AUTO)
    assert (response.status_code, response.get_data()) == (202, b"")
    server = client.get(f"/v2.1/servers/{active_server.id}", headers={**ADMIN, **mv("2.34")}).get_json()["server"]
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("MIGRATING", "migrating")
    [migration] = store.list_migrations(active_server.id)
    assert (migration.status, migration.migration_type, migration.source_compute) == (
        "accepted", "live-migration", HOST)
    request_id = response.headers["x-openstack-request-id"]
    action = store.get_action(request_id)
    assert (action.action, action.instance_uuid, migration.request_id) == (
        "live-migration", active_server.id, request_id)
    assert store.get_run(request_id).params == {
        "migration_uuid": migration.uuid, "host": None, "force": False, "block_migration": None,
        "disk_over_commit": None, "checks_before_reply": False}


@pytest.mark.parametrize(("version", "args", "expected"), [
    ("2.1", {"host": "compute-kvm-2", "block_migration": "yes", "disk_over_commit": "0"},
     {"host": "compute-kvm-2", "force": True, "block_migration": True, "disk_over_commit": False}),
    ("2.25", {"host": "compute-kvm-2", "block_migration": "auto"},
     {"host": "compute-kvm-2", "force": True, "block_migration": None, "disk_over_commit": None}),
    ("2.30", {"host": "compute-kvm-2", "block_migration": "auto"},
     {"host": "compute-kvm-2", "force": False, "block_migration": None, "disk_over_commit": None}),
    ("2.30", {"host": "compute-kvm-2", "block_migration": False, "force": "True"},
     {"host": "compute-kvm-2", "force": True, "block_migration": False, "disk_over_commit": None}),
    ("2.67", {"host": None, "block_migration": "auto", "force": False},
     {"host": None, "force": False, "block_migration": None, "disk_over_commit": None}),
    ("2.68", {"host": "compute-kvm-2", "block_migration": "auto"},
     {"host": "compute-kvm-2", "force": False, "block_migration": None, "disk_over_commit": None}),
])
def test_accepted__the_body_is_read_per_microversion(make_app, store, active_server, version, args, expected):
    client = make_app(api={"rpc_response_timeout": 0.0}).test_client()  # no worker here: below 2.34 it times out
    response = live(client, active_server.id, args, version)
    before_reply = tuple(map(int, version.split("."))) < (2, 34)
    assert response.status_code == (500 if before_reply else 202)
    params = store.get_run(store.list_actions(active_server.id)[0].request_id).params
    assert {k: params[k] for k in expected} == expected


# ---- the body, per microversion ----------------------------------------------------------------
@pytest.mark.parametrize(("version", "args", "message"), [
    ("2.1", {"host": None, "block_migration": False}, "'disk_over_commit' is a required property"),
    ("2.1", {**V21, "block_migration": "auto"}, "Invalid input for field/attribute block_migration. Value: auto."),
    ("2.1", {**V21, "block_migration": 1}, "Invalid input for field/attribute block_migration. Value: 1."),
    ("2.1", {**V21, "disk_over_commit": None}, "Invalid input for field/attribute disk_over_commit."),
    ("2.1", {"block_migration": False, "disk_over_commit": False}, "'host' is a required property"),
    ("2.25", {**AUTO, "disk_over_commit": False}, "Additional properties are not allowed ('disk_over_commit'"),
    ("2.25", {**AUTO, "block_migration": "AUTO"}, "Invalid input for field/attribute block_migration."),
    ("2.29", {**AUTO, "force": False}, "Additional properties are not allowed ('force' was unexpected)"),
    ("2.30", {**AUTO, "force": "maybe"}, "Invalid input for field/attribute force. Value: maybe."),
    ("2.68", {**AUTO, "force": False}, "Additional properties are not allowed ('force' was unexpected)"),
    ("2.68", {"block_migration": "auto"}, "'host' is a required property"),
    ("2.68", {**AUTO, "host": 7},
     "Invalid input for field/attribute host. Value: 7. 7 is not of type 'string', 'null'"),
    ("2.68", {**AUTO, "host": ""}, "Invalid input for field/attribute host. Value: . '' is too short"),
    ("2.68", {**AUTO, "host": "bad host!"}, "Invalid input for field/attribute host. Value: bad host!."),
    ("2.68", {**AUTO, "host": "h" * 256}, "is too long"),
    ("2.68", {**AUTO, "extra": 1}, "Additional properties are not allowed ('extra' was unexpected)"),
    ("2.68", None, "None is not of type 'object'"),
])
def test_schema__is_a_400_with_novas_words(client, active_server, version, args, message):
    response = live(client, active_server.id, args, version)
    assert response.status_code == 400
    key, code, text = fault(response)
    assert (key, code) == ("badRequest", 400) and message in text, text


def test_schema__comes_before_the_lookup(client):
    assert live(client, UNKNOWN_ID, {"block_migration": "auto"}).status_code == 400
    response = live(client, UNKNOWN_ID, AUTO)
    assert (response.status_code, fault(response)[2]) == (404, f"Instance {UNKNOWN_ID} could not be found.")


def test_schema__force_without_a_host_is_400_after_policy(client, active_server):
    response = live(client, active_server.id, {**AUTO, "force": True}, "2.30")
    assert (response.status_code, fault(response)[2]) == (400, "Can't force to a non-provided destination")
    assert live(client, active_server.id, {**AUTO, "force": True}, "2.30", OWNER).status_code == 403


def test_odd_bodies__never_500(client, active_server):
    odd = [None, 1, "x", [], {}, {"host": []}, {"host": {}}, {"block_migration": []}, {"force": None},
           {"host": "h", "block_migration": "auto", "force": [1]}, {"host": None, "block_migration": None},
           {"host": "é", "block_migration": "auto"}, {"host": "\u0000", "block_migration": True}]
    for args, version in itertools.product(odd, ("2.1", "2.25", "2.30", "2.68", "2.104")):
        response = live(client, active_server.id, args, version)
        assert response.status_code < 500, (args, version, response.get_data(as_text=True))


# ---- policy and the synchronous checks -------------------------------------------------------------
@pytest.mark.parametrize(("args", "rule"), [
    (AUTO, "os_compute_api:os-migrate-server:migrate_live"),
    ({**AUTO, "host": "compute-kvm-2"}, "os_compute_api:os-migrate-server:migrate_live:host"),
])
def test_policy__admins_only_with_the_rule_for_the_host_case(client, active_server, rule, args):
    response = live(client, active_server.id, args, headers=OWNER)
    assert (response.status_code, fault(response)[2]) == (403, f"Policy doesn't allow {rule} to be performed.")
    assert live(client, active_server.id, args, headers=OTHER).status_code == 404
    assert live(client, active_server.id, args, headers=NOBODY).status_code == 401


def test_checks__a_server_not_active_or_paused_is_409(client, build_server, store, active_server):
    response = live(client, build_server.id, AUTO)
    assert (response.status_code, fault(response)[2]) == (
        409, f"Cannot 'os-migrateLive' instance {build_server.id} while it is in vm_state building")
    set_fields(store, active_server.id, task_state="image_backup")
    response = live(client, active_server.id, AUTO)
    assert (response.status_code, fault(response)[2]) == (
        409, f"Cannot 'os-migrateLive' instance {active_server.id} while it is in task_state image_backup")


def test_checks__a_paused_server_is_accepted(client, store, active_server):
    set_fields(store, active_server.id, vm_state="paused", power_state=3)
    assert live(client, active_server.id, AUTO).status_code == 202
    server = client.get(f"/v2.1/servers/{active_server.id}", headers=ADMIN).get_json()["server"]
    assert server["status"] == "MIGRATING"


def test_checks__unknown_host_400_and_source_down_409(client, fleet, store, active_server):
    response = live(client, active_server.id, {**AUTO, "host": "nowhere"})
    assert (response.status_code, fault(response)[2]) == (400, "Compute host nowhere could not be found.")
    fleet.set_host_state(HOST, up=False)
    response = live(client, active_server.id, AUTO)
    assert (response.status_code, fault(response)[2]) == (409, "Service is unavailable at this time.")
    assert store.list_migrations(active_server.id) == []
    assert store.get_instance(active_server.id).task_state is None


def test_checks__a_second_request_while_migrating_is_409(client, active_server):
    assert live(client, active_server.id, AUTO).status_code == 202
    response = live(client, active_server.id, AUTO)
    assert (response.status_code, fault(response)[2]) == (
        409, f"Cannot 'os-migrateLive' instance {active_server.id} while it is in task_state migrating")


def test_checks__admins_pass_a_lock(client, store, active_server):
    set_fields(store, active_server.id, locked=True)
    assert live(client, active_server.id, AUTO).status_code == 202


def test_checks__a_refused_enqueue_is_503_and_leaves_nothing_migrating(client, enqueuer, store, active_server):
    from compute import errors

    enqueuer.fail_with = errors.QueueUnavailable("broker down")
    response = live(client, active_server.id, AUTO)
    assert response.status_code == 503
    assert store.get_instance(active_server.id).task_state is None
    assert [m.status for m in store.list_migrations(active_server.id)] == ["error"]


# ---- below 2.34 the reply waits for the checks -------------------------------------------------------
def test_before_2_34__checks_pass_before_the_202(engine_client, store, active_server):
    response = live(engine_client, active_server.id, V21, "2.1")
    assert response.status_code == 202
    [migration] = store.list_migrations(active_server.id)
    assert migration.status in ("queued", "preparing", "running")
    assert migration.dest_compute == "compute-kvm-2"  # no block migration: only ceph-a shares storage
    events = [e.event for e in store.list_events(response.headers["x-openstack-request-id"])]
    assert events[0] == "conductor_migrate_server"


def test_before_2_34__a_failed_check_is_400_and_the_server_stays(engine_client, store, active_server):
    response = live(engine_client, active_server.id, {**V21, "host": HOST}, "2.24")
    assert (response.status_code, fault(response)[2]) == (
        400, f"Unable to migrate instance ({active_server.id}) to current host ({HOST}).")
    after = store.get_instance(active_server.id)
    assert (after.host, after.vm_state, after.task_state) == (HOST, "active", None)
    assert [m.status for m in store.list_migrations(active_server.id)] == ["error"]


def test_before_2_34__no_valid_host_is_400_without_the_admin_explanation(engine_client, fleet, active_server):
    for host in ("compute-kvm-2", "compute-kvm-3", "compute-kvm-4", "compute-kvm-5"):  # every QEMU host but HOST
        fleet.set_host_state(host, enabled=False)
    response = live(engine_client, active_server.id, {"host": None, "block_migration": "auto"}, "2.25")
    assert (response.status_code, fault(response)[2]) == (
        400, "No valid host was found. There are not enough hosts available.")


def test_before_2_34__from_2_34_the_same_failure_is_a_202(engine_client, store, active_server):
    response = live(engine_client, active_server.id, {"host": HOST, "block_migration": "auto", "force": True}, "2.34")
    assert response.status_code == 202
    assert [m.status for m in store.list_migrations(active_server.id)] == ["accepted"]


def test_before_2_34__a_timeout_is_novas_500_with_a_fault_and_the_migration_goes_on(
        make_app, store, active_server):
    client = make_app(api={"rpc_response_timeout": 0.05}).test_client()
    response = live(client, active_server.id, V21, "2.1")
    assert (response.status_code, fault(response)) == (500, ("computeFault", 500, TIMEOUT_MESSAGE))
    after = store.get_instance(active_server.id)
    assert after.task_state == "migrating"
    assert after.fault["message"].startswith("Timed out waiting for a reply")
    assert [m.status for m in store.list_migrations(active_server.id)] == ["accepted"]
