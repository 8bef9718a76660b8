"""The fleet control extension (/compute-actions/v1/fleet): admin only, Nova fault bodies for bad
input, and every change taking effect at the simulator's next operation or check."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from compute import fleet_control
from compute.models import Instance
from compute.settings import REPO_ROOT
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tests.api.conftest import ADMIN, HOST, NOBODY, OWNER, fault, mv
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine

FLEET = "/compute-actions/v1/fleet"
ROUTES = [("get", "/hosts", None), ("patch", "/hosts/compute-kvm-1", {"up": False}), ("get", "/operations", None),
          ("get", "/faults", None), ("post", "/faults", {"operation": "spawn"}), ("delete", "/faults", None),
          ("delete", "/faults/spawn:*:fail", None), ("get", "/time", None), ("put", "/time", {"scale": 2})]


def call(client: FlaskClient, method: str, path: str, body: Any = None, headers: dict[str, str] = ADMIN) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return getattr(client, method)(FLEET + path, **kwargs)


def add(client: FlaskClient, **body: Any) -> Any:
    return call(client, "post", "/faults", body)


# ---- who may ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route__is_admin_only_with_nova_fault_bodies(client: FlaskClient, store: Store, method: str,
                                                           path: str, body: Any) -> None:
    assert fault(call(client, method, path, body, OWNER)) == (
        "forbidden", 403, "Policy doesn't allow compute_actions:fleet to be performed.")
    assert fault(call(client, method, path, body, NOBODY)) == (
        "unauthorized", 401, "The request you have made requires authentication.")
    assert store.fault_rules() == {} and store.get_host(HOST).up
    assert call(client, method, path, body).status_code in (200, 201, 204, 404)  # 404: no such rule yet


def test_policy_file__can_open_the_extension_to_another_role(make_app: Any, tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"compute_actions:fleet": "role:member"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    assert call(client, "get", "/hosts", headers=OWNER).status_code == 200


def test_unknown_route_and_method__are_nova_fault_bodies(client: FlaskClient) -> None:
    assert fault(call(client, "get", "/nope"))[:2] == ("itemNotFound", 404)
    assert fault(call(client, "post", "/hosts", {}))[:2] == ("badMethod", 405)


# ---- hosts -------------------------------------------------------------------------------------------
def test_hosts__lists_the_fleet_with_state_and_usage(client: FlaskClient, active_server: Instance) -> None:
    response = call(client, "get", "/hosts")
    assert response.status_code == 200
    hosts = {h["name"]: h for h in response.get_json()["hosts"]}
    assert sorted(hosts) == ["compute-kvm-1", "compute-kvm-2", "compute-kvm-3", "compute-kvm-4", "compute-kvm-5",
                             "compute-xen-1", "compute-xen-2"]
    kvm1 = hosts[HOST]
    assert (kvm1["state"], kvm1["status"], kvm1["up"], kvm1["hypervisor_type"]) == ("up", "enabled", True, "QEMU")
    assert (kvm1["vcpus_used"], kvm1["memory_mb_used"]) == (1, 512)


def test_host_down__shows_in_os_services_and_the_scheduler_skips_it(client: FlaskClient, store: Store) -> None:
    response = call(client, "patch", "/hosts/compute-kvm-2", {"up": False})
    assert response.status_code == 200
    assert (response.get_json()["host"]["state"], response.get_json()["host"]["up"]) == ("down", False)
    assert store.get_host("compute-kvm-2").up is False
    services = client.get("/v2.1/os-services?host=compute-kvm-2", headers=ADMIN).get_json()["services"]
    assert services[0]["state"] == "down"
    hypervisor = client.get("/v2.1/os-hypervisors/detail", headers={**ADMIN, **mv("2.53")}).get_json()
    assert {h["hypervisor_hostname"]: h["state"] for h in hypervisor["hypervisors"]}["compute-kvm-2"] == "down"
    assert call(client, "patch", "/hosts/compute-kvm-2", {"up": True}).get_json()["host"]["state"] == "up"


@pytest.mark.parametrize("body", [{}, {"up": "false"}, {"up": 0}, {"up": None}, {"up": True, "enabled": False},
                                  [], "up"])
def test_host_patch__bad_bodies_are_400(client: FlaskClient, store: Store, body: Any) -> None:
    key, code, _ = fault(call(client, "patch", "/hosts/compute-kvm-2", body))
    assert (key, code) == ("badRequest", 400)
    assert store.get_host("compute-kvm-2").up


def test_host_patch__unknown_host_is_404_and_empty_or_malformed_bodies_400(client: FlaskClient) -> None:
    assert fault(call(client, "patch", "/hosts/nope", {"up": False})) == (
        "itemNotFound", 404, "Compute host nope could not be found.")
    empty = client.patch(FLEET + "/hosts/compute-kvm-2", headers=ADMIN)
    assert fault(empty)[:2] == ("badRequest", 400)
    malformed = client.patch(FLEET + "/hosts/compute-kvm-2", headers={**ADMIN, "Content-Type": "application/json"},
                             data="{nope")
    assert fault(malformed) == ("badRequest", 400, "Malformed request body")
    wrong_type = client.patch(FLEET + "/hosts/compute-kvm-2", headers={**ADMIN, "Content-Type": "text/xml"},
                              data="<up/>")
    assert fault(wrong_type)[:2] == ("badMediaType", 415)


# ---- fault rules -------------------------------------------------------------------------------------
def test_faults__add_list_remove_clear(client: FlaskClient, store: Store) -> None:
    created = add(client, operation="check_can_live_migrate_destination", host="compute-kvm-2", times=1,
                  message="no room")
    assert created.status_code == 201
    rule = created.get_json()["fault"]
    assert rule == {"id": "check_can_live_migrate_destination:compute-kvm-2:fail",
                    "operation": "check_can_live_migrate_destination", "host": "compute-kvm-2", "effect": "fail",
                    "factor": None, "message": "no room", "times_left": 1}
    slow = add(client, operation="live_migration", effect="slow", factor=4).get_json()["fault"]
    assert (slow["id"], slow["host"], slow["factor"], slow["times_left"]) == ("live_migration:*:slow", None, 4.0, None)
    hang = add(client, operation="spawn", effect="hang", host=None).get_json()["fault"]
    assert hang["id"] == "spawn:*:hang"
    listed = call(client, "get", "/faults").get_json()["faults"]
    assert [r["id"] for r in listed] == sorted([rule["id"], slow["id"], hang["id"]])
    assert call(client, "delete", "/faults/live_migration:*:slow").status_code == 204
    assert fault(call(client, "delete", "/faults/live_migration:*:slow")) == (
        "itemNotFound", 404, "Fault rule live_migration:*:slow could not be found.")
    assert store.fault_budget(slow["id"]) is None and slow["id"] not in store.fault_rules()
    assert call(client, "delete", "/faults").status_code == 204
    assert call(client, "get", "/faults").get_json()["faults"] == []


def test_faults__the_same_rule_again_replaces_it_and_its_budget(client: FlaskClient) -> None:
    add(client, operation="spawn", times=1)
    add(client, operation="spawn", times=3, message="again")
    [rule] = call(client, "get", "/faults").get_json()["faults"]
    assert (rule["times_left"], rule["message"]) == (3, "again")


@pytest.mark.parametrize(("body", "message"), [
    ({"operation": "nope"}, "Invalid input for field/attribute operation."),
    ({}, "'operation' is a required property"),
    ({"operation": "spawn", "effect": "explode"}, "Invalid input for field/attribute effect."),
    ({"operation": "spawn", "effect": "stall"}, "Invalid input for field/attribute effect."),
    ({"operation": "prep_resize", "effect": "slow"}, "Effect slow does not apply to prep_resize"),
    ({"operation": "check_can_live_migrate_source", "effect": "hang"}, "Effect hang does not apply"),
    ({"operation": "spawn", "factor": 2}, "factor applies only to the slow effect."),
    ({"operation": "spawn", "effect": "slow", "factor": 0}, "is less than or equal to the minimum of 0"),
    ({"operation": "spawn", "effect": "slow", "factor": -1}, "is less than or equal to the minimum of 0"),
    ({"operation": "spawn", "effect": "slow", "factor": True}, "is not of type 'number'"),
    ({"operation": "spawn", "effect": "slow", "factor": "2"}, "is not of type 'number', 'null'"),
    ({"operation": "spawn", "effect": "slow", "factor": 1e9}, "is greater than the maximum of 1e+06"),
    ({"operation": "spawn", "times": 0}, "is less than the minimum of 1"),
    ({"operation": "spawn", "times": "1"}, "is not of type 'integer', 'null'"),
    ({"operation": "spawn", "times": True}, "is not of type 'integer', 'null'"),
    ({"operation": "spawn", "times": 1.5}, "is not of type 'integer', 'null'"),
    ({"operation": "spawn", "host": "nope"}, "Compute host nope could not be found."),
    ({"operation": "spawn", "host": ""}, "Invalid input for field/attribute host."),
    ({"operation": "spawn", "host": "a/b"}, "Invalid input for field/attribute host."),
    ({"operation": "spawn", "message": "x" * 256}, "is too long"),
    ({"operation": "spawn", "message": ""}, "is too short"),
    ({"operation": "spawn", "extra": 1}, "Additional properties are not allowed ('extra' was unexpected)"),
    (["spawn"], "is not of type 'object'"),
    ("spawn", "is not of type 'object'"),
])
def test_faults__bad_input_is_a_400_and_stores_nothing(client: FlaskClient, store: Store, body: Any,
                                                      message: str) -> None:
    key, code, text = fault(call(client, "post", "/faults", body))
    assert (key, code) == ("badRequest", 400)
    assert message in text
    assert store.fault_rules() == {}


def test_faults__non_finite_numbers_are_a_400(client: FlaskClient) -> None:
    for raw in ('{"operation": "spawn", "effect": "slow", "factor": NaN}',
                '{"operation": "spawn", "effect": "slow", "factor": Infinity}'):
        response = client.post(FLEET + "/faults", headers={**ADMIN, "Content-Type": "application/json"}, data=raw)
        assert fault(response)[:2] == ("badRequest", 400)


def test_operations__are_exactly_what_the_simulator_looks_rules_up_for(client: FlaskClient) -> None:
    """Every name the simulator passes to _start (polled operations) or _check (checks), and no other."""
    tree = ast.parse((REPO_ROOT / "fleet" / "simulator.py").read_text())
    started, checked = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("_start", "_check"):
            literal = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if literal:
                (started if node.func.attr == "_start" else checked).add(literal[0])
    assert started == set(fleet_control.OPERATIONS)
    assert checked == set(fleet_control.CHECKS)
    listed = call(client, "get", "/operations").get_json()["operations"]
    assert {o["name"]: o["effects"] for o in listed} == {
        **{op: ["fail", "hang", "slow"] for op in started}, **{op: ["fail"] for op in checked}}


# ---- the rules, as the simulator applies them ------------------------------------------------------
def started_op(fleet: SimulatedFleet, store: Store, instance: Instance, op_id: str = "op-1") -> dict[str, Any]:
    fleet.spawn(op_id, HOST, instance)
    return store.get_fleet_op(op_id)


def test_fail_hang_slow__take_effect_at_the_next_operation(client: FlaskClient, store: Store, fleet: SimulatedFleet,
                                                           active_server: Instance) -> None:
    base = started_op(fleet, store, active_server, "before")["duration"]
    assert base > 0
    add(client, operation="spawn", effect="slow", factor=5, times=1)
    slowed = started_op(fleet, store, active_server, "slowed")
    assert (slowed["duration"], slowed["outcome"]) == (pytest.approx(base * 5), "ok")
    assert started_op(fleet, store, active_server, "after")["duration"] == pytest.approx(base)  # spent
    add(client, operation="spawn", effect="hang", host=HOST, times=1)
    started_op(fleet, store, active_server, "hung")
    fleet.clock.advance(3600)
    assert fleet.poll("hung").done is False
    add(client, operation="spawn", message="disk full")
    started_op(fleet, store, active_server, "failed")
    fleet.clock.advance(base + 1)
    assert (fleet.poll("failed").done, fleet.poll("failed").error) == (True, "disk full")
    assert [r["times_left"] for r in call(client, "get", "/faults").get_json()["faults"]] == [None, 0, 0]


def test_a_rule_on_another_host__does_not_fire(client: FlaskClient, store: Store, fleet: SimulatedFleet,
                                               active_server: Instance) -> None:
    add(client, operation="spawn", host="compute-kvm-2")
    assert started_op(fleet, store, active_server)["outcome"] == "ok"
    assert call(client, "get", "/faults").get_json()["faults"][0]["times_left"] is None


# ---- time scale -------------------------------------------------------------------------------------
def test_time_scale__set_read_and_back_to_the_setting(client: FlaskClient, store: Store, fleet: SimulatedFleet,
                                                      active_server: Instance) -> None:
    shown = call(client, "get", "/time").get_json()["time"]
    assert shown == {"scale": 1.0, "source": "config", "configured_scale": 1.0, "clock_offset_seconds": 0.0}
    base = fleet.duration("spawn")
    changed = call(client, "put", "/time", {"scale": 3})
    assert changed.status_code == 200
    assert changed.get_json()["time"]["scale"] == 3.0 and changed.get_json()["time"]["source"] == "runtime"
    assert fleet.duration("spawn") == pytest.approx(base * 3)
    assert started_op(fleet, store, active_server)["duration"] == pytest.approx(base * 3)
    assert call(client, "put", "/time", {"scale": 0}).get_json()["time"]["scale"] == 0.0
    assert fleet.duration("spawn") == 0.0
    back = call(client, "put", "/time", {"scale": None}).get_json()["time"]
    assert (back["scale"], back["source"]) == (1.0, "config")
    assert fleet.duration("spawn") == pytest.approx(base)


@pytest.mark.parametrize("body", [{}, {"scale": -1}, {"scale": "2"}, {"scale": True}, {"scale": 1e7},
                                  {"scale": 1, "advance": 3}, [2], None])
def test_time_scale__bad_bodies_are_400(client: FlaskClient, store: Store, body: Any) -> None:
    response = (client.put(FLEET + "/time", headers=ADMIN) if body is None
                else call(client, "put", "/time", body))
    assert fault(response)[:2] == ("badRequest", 400)
    assert store.fleet_time_scale() is None


# ---- the documented example, on the in-memory engine ---------------------------------------------
def test_a_pre_check_fault_on_the_first_choice__the_migration_retries_on_another_host(
        engine_client: FlaskClient, engine: Engine) -> None:
    client = engine_client
    created = client.post("/v2.1/servers", headers=ADMIN, json={"server": {
        "name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1", "networks": "none",
        "availability_zone": f"nova:{HOST}"}})
    server_id = created.get_json()["server"]["id"]
    engine.drain()
    # compute-kvm-3 has the most free RAM: the scheduler's first choice from compute-kvm-1
    assert add(client, operation="check_can_live_migrate_destination", host="compute-kvm-3", times=1,
               message="pre-check refused").status_code == 201
    moved = client.post(f"/v2.1/servers/{server_id}/action", headers={**ADMIN, **mv("2.34")},
                        json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    assert moved.status_code == 202
    engine.drain()
    server = client.get(f"/v2.1/servers/{server_id}", headers=ADMIN).get_json()["server"]
    assert (server["status"], server["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "compute-kvm-2")
    request_id = moved.headers["x-openstack-request-id"]
    events = client.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}",
                        headers={**ADMIN, **mv("2.84")}).get_json()["instanceAction"]["events"]
    checks = [(e["host"], e["result"], e["details"]) for e in reversed(events)
              if e["event"] == "compute_check_can_live_migrate_destination"]
    assert checks == [("compute-kvm-3", "Error", "pre-check refused"), ("compute-kvm-2", "Success", None)]
    assert call(client, "get", "/faults").get_json()["faults"][0]["times_left"] == 0
