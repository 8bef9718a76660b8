"""A fuzz pass over every route of the app: no request may answer 5xx, none may take long.

Hypothesis draws a rule of ``app.url_map`` and one of its methods, fills its path arguments
(known ids, odd text, numbers past int()'s 4,300 digits), and adds a query string, the
version and auth headers and, for writes, a JSON body shaped like the API's own (action
keys, field names) or raw bytes. The app runs on fakeredis over the in-memory engine, whose
queue never refuses (so no 503 is expected either) and which runs the flows a request queued
before the next request (and while a pre-2.34 os-migrateLive waits for its checks).
Deterministic (``derandomize``), and bounded in examples so the file takes well under a minute.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import fakeredis
import pytest
from _pytest.monkeypatch import MonkeyPatch
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.actions import ACTIONS
from api.app import create_app, view_blueprints
from compute.actions import live_migrate
from compute.actions.create_server import create_server
from compute.context import RequestContext
from compute.models import Instance, Migration, utcnow
from compute.settings import CONFIG_DIR, Settings
from compute.states import PowerState, VmState
from compute.store import Store
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine, build_engine

view_blueprints()  # imports every view module, so that ACTIONS holds every action key
D = "9" * 4301
SLOW = 2.0  # seconds: no single request may take longer
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=3000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

ODD_TEXT = ["", " ", "x", "1", "0", "-1", "1.5", "1e5", "²", "١", "%", "%00", "\u0000", "é", "..", "a:b", "None",
            "null", "true", "false", "latest", "in:", "in:x,y", "req-x", "(", "(a+)+$", "a{99999999999}",
            "(" * 600 + "a" + ")" * 600, "[[:alpha:]]", "\\", "9" * 20, "9" * 400, D, "0" * 5000 + "1",
            "2030-13-45", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2020-01-01T00:00:00Z",
            "x" * 2000, "\ud7ff", "\U0001f600"]
QUERY_NAMES = ["limit", "marker", "name", "status", "all_tenants", "project_id", "tenant_id", "host", "flavor",
               "image", "deleted", "changes-since", "changes-before", "minRam", "minDisk", "is_public",
               "with_servers", "hypervisor_hostname_pattern", "hidden", "instance_uuid", "migration_type",
               "source_compute", "user_id", "binary", "type", "server", "id", "reserved", "usages"]
FIELD_NAMES = ["name", "backup_type", "rotation", "metadata", "host", "block_migration", "disk_over_commit",
               "force", "state", "adminPass", "flavorRef", "imageRef", "min_count", "max_count", "networks",
               "availability_zone", "key_name", "security_groups", "user_data", "uuid", "port", "tag",
               "block_device_mapping_v2", "source_type", "destination_type", "boot_index", "description",
               "tags", "config_drive", "OS-DCF:diskConfig", "return_reservation_id", "status",
               "disabled_reason", "forced_down", "binary", "quota_set", "quota_class_set", "instances", "cores",
               "ram", "force_complete", "aggregate", "add_host", "remove_host", "set_metadata", "zone"]
BODY_KEYS = sorted(ACTIONS) + ["server", "os:scheduler_hints", "force_complete", "aggregate", "add_host",
                               "remove_host", "set_metadata", "quota_set", "quota_class_set", "status"]
RAW_BODIES = [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a": 1' + D.encode() + b"}",
              b'{"createBackup": {"name": "b", "backup_type": "d", "rotation": ' + D.encode() + b"}}",
              b'{"os-resetState": {"state": "\\ud800"}}', b"[" * 5000 + b"]" * 5000, b'{"a": NaN}',
              b'{"migrate": {"host": Infinity}}', b'{"x": 1, "x": 2}']


@dataclass
class World:
    app: Flask
    client: FlaskClient
    ids: list[str]
    engine: Engine


def put_active(store: Store, instance_id: str, host: str) -> Instance:
    def mutate(inst: Instance) -> None:
        inst.host = inst.node = host
        inst.vm_state, inst.task_state, inst.power_state = VmState.ACTIVE, None, PowerState.RUNNING
        inst.launched_at = utcnow()

    inst = store.update_instance(instance_id, mutate)
    store.claim_resources(host, instance_id, inst.flavor)
    return inst


def build_world() -> World:
    config = Settings(fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml"), "duration_scale": 1.0},
                      api={"rpc_response_timeout": SLOW / 2})
    store = Store(fakeredis.FakeRedis(decode_responses=True), prefix=f"fz{uuid.uuid4().hex[:8]}:")
    fleet = SimulatedFleet(store, duration_scale=1.0)
    seed_fleet(store, fleet, config.fleet.fleet_file)
    engine = build_engine(store, fleet, config)
    service = engine.service
    owner = RequestContext(user_id="alice", project_id="demo", roles=["member", "reader"])
    active = put_active(store, create_server(service, owner, name="active", flavor_id="1", image_id=IMAGE_ID).id,
                        "compute-kvm-1")
    building = create_server(service, owner, name="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", flavor_id="1",
                             image_id=IMAGE_ID)
    resized = put_active(store, create_server(service, owner, name="resized", flavor_id="1", image_id=IMAGE_ID).id,
                         "compute-kvm-2")
    store.update_instance(resized.id, lambda i: setattr(i, "vm_state", VmState.RESIZED))
    cold = store.create_migration(Migration(
        instance_uuid=resized.id, migration_type="migration", status="finished", source_compute="compute-kvm-1",
        source_node="compute-kvm-1", dest_compute="compute-kvm-2", dest_node="compute-kvm-2",
        old_instance_type_id="1", new_instance_type_id="1", user_id="alice", project_id="demo"))
    live = store.create_migration(Migration(
        instance_uuid=active.id, migration_type="live-migration", status="running", source_compute="compute-kvm-1",
        source_node="compute-kvm-1", dest_compute="compute-kvm-2", dest_node="compute-kvm-2",
        old_instance_type_id="1", new_instance_type_id="1", user_id="admin", project_id="admin"))
    hosts = store.list_hosts()
    app = create_app(config, service)
    ids = [active.id, building.id, resized.id, str(cold.id), str(live.id), live.uuid, UNKNOWN_ID, IMAGE_ID, "1",
           "2", "demo", "admin", "default", *(h.name for h in hosts), *(str(h.service_id) for h in hosts),
           *(h.uuid for h in hosts), *(h.service_uuid for h in hosts)]
    ids += [a.request_id for a in store.list_actions(active.id)]
    return World(app, app.test_client(), ids, engine)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    built = build_world()
    with MonkeyPatch.context() as patch:
        patch.setattr(live_migrate, "pause", lambda _seconds: built.engine.deliver_one())
        yield built


def routes(app: Flask) -> list[tuple[str, str, tuple[str, ...]]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule, tuple(sorted(rule.arguments))))
    return sorted(found)


# ---- strategies ------------------------------------------------------------------------------------------
def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], percent: int = 75) -> st.SearchStrategy[Any]:
    """``common`` about ``percent`` % of the time (one_of would weigh its branches alike)."""
    return st.integers(min_value=0, max_value=99).flatmap(lambda roll: common if roll < percent else rare)


printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
odd_text = st.sampled_from(ODD_TEXT) | st.text(max_size=24)
numbers = st.integers(min_value=-10**6, max_value=10**30).map(str)


def path_values(world: World) -> st.SearchStrategy[str]:
    return mostly(st.sampled_from(world.ids), odd_text | numbers)


query_values = odd_text | numbers
query_pairs = st.lists(st.tuples(st.sampled_from(QUERY_NAMES) | printable, query_values), max_size=4)

# Mostly versions and tokens the API takes, so that most requests get past the gate to the views.
supported = st.integers(min_value=1, max_value=104).map(lambda minor: f"2.{minor}")
odd_versions = (st.sampled_from(["latest", "2.0", "3.0", "2.105", "2." + D, D + ".1", "2.01", "2", "2.1.1", "",
                                 "compute"]) | st.from_regex(r"\A[0-9]{1,4}\.[0-9]{1,4}\Z") | printable)
version_text = mostly(supported, odd_versions, 80)
version_headers = mostly(
    st.just({}) | version_text.map(lambda v: {"OpenStack-API-Version": f"compute {v}"}),
    version_text.map(lambda v: {"X-OpenStack-Nova-API-Version": v})
    | printable.map(lambda v: {"OpenStack-API-Version": v}),
)
token_headers = st.sampled_from([{"X-Auth-Token": t} for t in (
    "admin:admin", "admin:admin", "admin:admin", "alice:demo", "alice:demo", "bob:other", "::::", "admin",
    "x" * 300)] + [{}])
extra_headers = st.sampled_from([{}, {}, {"Idempotency-Key": "fuzz-1"}, {"Idempotency-Key": "x" * 300},
                                 {"Content-Type": "text/plain"}, {"Content-Type": "application/xml"},
                                 {"Accept": "application/xml"}, {"X-OpenStack-Request-Id": "req-x"}])

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
                | st.floats(allow_nan=True, allow_infinity=True) | odd_text | numbers)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FIELD_NAMES) | printable, children, max_size=5),
    max_leaves=16,
)
shaped_bodies = st.builds(
    lambda key, value: {key: value},
    st.sampled_from(BODY_KEYS),
    json_values | st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=6),
)
VALID_BODIES: list[dict[str, Any]] = [
    {"os-resetState": {"state": "active"}}, {"os-resetState": {"state": "error"}},
    {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}},
    {"changePassword": {"adminPass": "pw"}}, {"migrate": None}, {"migrate": {"host": "compute-kvm-3"}},
    {"os-migrateLive": {"host": None, "block_migration": "auto"}},
    {"os-migrateLive": {"host": "compute-kvm-3", "block_migration": False, "disk_over_commit": False}},
    {"confirmResize": None}, {"revertResize": None}, {"injectNetworkInfo": None}, {"resetNetwork": None},
    {"force_complete": None},
    {"server": {"name": "fz", "flavorRef": "1", "imageRef": IMAGE_ID, "networks": "none"}},
    {"server": {"name": "fz", "flavorRef": "2", "imageRef": IMAGE_ID, "min_count": 2, "max_count": "3"}},
    {"status": "disabled", "disabled_reason": "fz"}, {"host": "compute-kvm-1", "binary": "nova-compute"},
    {"aggregate": {"name": "fz", "availability_zone": "z1"}}, {"add_host": {"host": "compute-kvm-1"}},
    {"quota_set": {"instances": 20, "cores": -1}},
]


ACTION_BODIES = [b for b in VALID_BODIES if list(b) in ([k] for k in ACTIONS)]


@st.composite
def near_valid_bodies(draw: st.DrawFn, choices: list[dict[str, Any]] = VALID_BODIES) -> dict[str, Any]:
    """A body the API takes, perhaps with one field changed to something odd."""
    body = json.loads(json.dumps(draw(st.sampled_from(choices))))
    key = draw(st.sampled_from(sorted(body)))
    inner = body[key]
    if isinstance(inner, dict) and inner and draw(st.booleans()):
        field = draw(st.sampled_from(sorted(inner)))
        inner[field] = draw(json_values)
    elif draw(st.booleans()):
        body[key] = draw(json_values)
    return body


bodies = mostly(near_valid_bodies(), st.none() | shaped_bodies | json_values | st.sampled_from(RAW_BODIES), 50)


def send(world: World, method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
         body: Any) -> None:
    url = path + ("?" + urlencode(query) if query else "")
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["headers"] = {"Content-Type": "application/json", **headers}
    elif body is not None:
        kwargs["data"] = json.dumps(body)
        kwargs["headers"] = {"Content-Type": "application/json", **headers}
    started = time.monotonic()
    response = world.client.open(url, method=method, **kwargs)
    took = time.monotonic() - started
    text = response.get_data(as_text=True)
    # /readyz answers 503 by design here: no worker beats in this world (api/views/health.py).
    assert response.status_code < 500 or path == "/readyz", (method, url[:300], headers, repr(body)[:300], text[:300])
    assert took < SLOW, (method, url[:300], f"{took:.2f}s")
    world.engine.drain()


def fill(rule: str, arguments: tuple[str, ...], values: list[str]) -> str:
    path = rule
    for argument, value in zip(arguments, values):
        path = path.replace(f"<{argument}>", quote(value, safe=""), 1).replace(f"<path:{argument}>",
                                                                             quote(value, safe=""), 1)
    return path


@st.composite
def requests(draw: st.DrawFn, world: World) -> tuple[str, str, list[tuple[str, str]], dict[str, str], Any]:
    method, rule, arguments = draw(st.sampled_from(routes(world.app)))
    values = [draw(path_values(world)) for _ in arguments]
    headers = {**draw(token_headers), **draw(version_headers), **draw(extra_headers)}
    body = draw(bodies) if method in ("POST", "PUT", "PATCH", "DELETE") else None
    return method, fill(rule, arguments, values), draw(query_pairs), headers, body


def test_routes_enumerated__cover_the_api(world: World) -> None:
    rules = {rule for _, rule, _ in routes(world.app)}
    assert {"/v2.1/servers", "/v2.1/servers/<server_id>/action", "/v2.1/os-hypervisors/<hypervisor_ref>",
            "/v2.1/os-migrations", "/metrics"} <= rules


@FUZZ
@given(data=st.data())
def test_fuzz__every_route_never_5xx_and_never_slow(world: World, data: st.DataObject) -> None:
    send(world, *data.draw(requests(world)))


@settings(FUZZ, max_examples=1500)
@given(data=st.data())
def test_fuzz__server_actions_with_shaped_bodies(world: World, data: st.DataObject) -> None:
    server_id = data.draw(st.sampled_from(world.ids[:3]) | path_values(world))
    headers = {**data.draw(token_headers), **data.draw(version_headers)}
    body = data.draw(mostly(near_valid_bodies(ACTION_BODIES), shaped_bodies | st.sampled_from(RAW_BODIES)))
    send(world, "POST", f"/v2.1/servers/{quote(server_id, safe='')}/action", [], headers, body)


@settings(FUZZ, max_examples=1500)
@given(data=st.data())
def test_fuzz__listings_with_odd_queries(world: World, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from([
        "/v2.1/servers", "/v2.1/servers/detail", "/v2.1/flavors", "/v2.1/flavors/detail", "/v2.1/images",
        "/v2.1/images/detail", "/v2.1/os-hypervisors", "/v2.1/os-hypervisors/detail", "/v2.1/os-migrations",
        "/v2.1/os-services", "/v2.1/limits", "/v2.1/os-availability-zone/detail",
        f"/v2.1/servers/{world.ids[0]}/os-instance-actions", f"/v2.1/servers/{world.ids[0]}/migrations"]))
    headers = {**data.draw(token_headers), **data.draw(version_headers)}
    send(world, "GET", path, data.draw(query_pairs), headers, None)
