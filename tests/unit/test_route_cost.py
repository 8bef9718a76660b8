"""Issue 12 item 1 for every route the app serves, not a chosen list: each GET rule of the Flask url_map
is sent with its path filled from a seeded store, at 50 and 500 hosts and with a small and a large
history (other projects' servers, actions, migrations and images, and many actions on the one server
the paths name), and must send the same commands each time: their names and argument counts, so an
MGET of every host or a pipeline of one read per record fails as much as a loop does.

The few routes whose answer lists every host are allowed a payload that grows, but only in a fixed
number of round trips (a pipeline or an MGET is one): ``ALL_HOSTS``, each with its reason. The writes an
operator runs often are counted the same way at 50 and 500 hosts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from api.app import create_app
from compute import scheduler
from compute.models import (
    ActionEvent,
    Image,
    Instance,
    InstanceAction,
    Migration,
    new_request_id,
    utcnow,
)
from compute.service import ComputeService
from compute.settings import Settings
from compute.store import Store
from tests.conftest import RecordingEnqueuer
from tests.unit.test_request_cost import Sent, fleet_of, sending

ADMIN = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.96"}
ZONED = 3  # aggregates, each with its zone and 5 hosts


@dataclass
class Seeded:
    store: Store
    app: Flask
    ids: dict[str, str]


def server(store: Store, host: str, project: str) -> Instance:
    flavor = store.get_flavor("2")
    assert flavor is not None
    inst = Instance(name="vm", project_id=project, user_id=project, flavor=flavor, host=host, node=host,
                    vm_state="active", power_state=1, launched_at=utcnow())
    store.claim_resources(host, inst.id, flavor)
    store.put_instance(inst)
    return inst


def action_on(store: Store, inst: Instance, name: str = "lock") -> str:
    rid = new_request_id()
    store.record_action(InstanceAction(request_id=rid, action=name, instance_uuid=inst.id,
                                       user_id=inst.user_id, project_id=inst.project_id))
    store.put_event(rid, ActionEvent(key=name, event=f"compute_{name}_instance", result="Success"))
    return rid


def seeded(tmp_path: Path, hosts: int, history: int) -> Seeded:
    """``hosts`` hosts, zoned aggregates (one of hosts without servers), the admin's one server with ``history`` actions and one migration,
    and in another project ``history`` servers (each with an action and a migration) and images."""
    store = fleet_of(hosts, tmp_path)
    settings = Settings()
    app = create_app(settings, ComputeService(store, RecordingEnqueuer(), settings))
    aggregate_id = "0"
    for number in range(ZONED):
        aggregate = store.create_aggregate(f"rack-{number}", availability_zone=f"az-{number}")
        aggregate_id = str(aggregate.id)
        for index in range(5):
            store.add_aggregate_host(aggregate.id, f"host-{number * 5 + index:04d}")
    spare = store.create_aggregate("spare", availability_zone="az-spare")  # hosts without servers
    for index in range(40, 45):
        store.add_aggregate_host(spare.id, f"host-{index:04d}")
    mine = server(store, "host-0003", "admin")
    request_id = action_on(store, mine)
    for _ in range(history):
        action_on(store, mine, "unlock")
    migration = store.create_migration(Migration(
        instance_uuid=mine.id, migration_type="live-migration", status="running", source_compute="host-0003",
        dest_compute="host-0004", project_id="admin", user_id="admin"))
    for index in range(history):  # on the hosts from host-0005: not in the answer about host-0003's servers
        theirs = server(store, f"host-{5 + index % (hosts - 5):04d}", "other")
        action_on(store, theirs)
        store.create_migration(Migration(
            instance_uuid=theirs.id, migration_type="migration", status="completed",
            source_compute=f"host-{index % hosts:04d}", dest_compute=f"host-{(index + 1) % hosts:04d}",
            project_id="other", user_id="other"))
        store.put_image(Image(name=f"other-{index}", owner="other", visibility="private"))
    store.update_host("host-0001", enabled=False)
    host = store.get_host("host-0003")
    image = next(i for i in store.list_images() if i.visibility == "public")
    assert host is not None
    ids = {
        "server_id": mine.id, "request_id": request_id, "migration_id": str(migration.id),
        "image_id": image.id, "flavor_id": "2", "aggregate_ref": aggregate_id,
        "hypervisor_ref": host.uuid, "pattern": "host-0003", "quota_class": "default",
        "project_id": "admin", "user_id": "admin", "domain_id": "default", "filename": "none.css",
        "service_ref": host.service_uuid, "spare_aggregate": str(spare.id),
    }
    return Seeded(store, app, ids)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Seeded]:
    """The base world, one with ten times the fleet, one with twenty times the history."""
    sizes = {"base": (50, 30), "fleet": (500, 30), "history": (50, 300)}
    return {name: seeded(tmp_path_factory.mktemp(name), hosts, history) for name, (hosts, history) in sizes.items()}


PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")

# Routes whose answer itself names every host (or decides from each): the payload grows with the fleet,
# the round trips must not.
ALL_HOSTS = {
    "/v2.1/os-services": "Nova's os-services lists every service (no paging in Nova either): the records in one MGET",
    "/v2.1/os-availability-zone/detail": "every host of every zone is in the answer: the records in one MGET",
    "/compute-actions/v1/fleet/hosts": "the fleet control panel shows every simulated host with its usage",
    "/v2.1/os-hypervisors": "Nova answers every hypervisor when no limit is given: one page of them all",
    "/v2.1/os-hypervisors/detail": "the same, with details",
    "/metrics": "the per-host gauges (compute_actions_host_*) name every host: their usage in one pipeline",
}
# The lists Nova (or Glance) pages are asked for a page: what grows then is what was not asked for.
QUERY = dict.fromkeys(["/v2.1/images", "/v2.1/images/detail", "/image/v2/images", "/v2.1/os-migrations",
                       "/v2.1/servers/<server_id>/os-instance-actions", "/v2.1/servers/<server_id>/migrations",
                       "/v2.1/servers", "/v2.1/servers/detail", "/v2.1/flavors", "/v2.1/flavors/detail"], "limit=5")
# More queries of a rule, each walked as a route of its own (the paged hypervisor lists are held to the
# same commands, not only the same round trips).
MORE_QUERIES = {
    "/v2.1/servers": ["all_tenants=1&limit=5"],
    "/v2.1/servers/detail": ["all_tenants=1&limit=5", "all_tenants=1&host=host-0003"],
    "/v2.1/os-hypervisors": ["limit=5", "with_servers=true&hypervisor_hostname_pattern=host-0003"],
    "/v2.1/os-hypervisors/detail": ["limit=5"],
    "/v2.1/os-services": ["host=host-0003"],
    "/image/v2/images": ["limit=5&visibility=private", "limit=5&owner=admin"],
}


# What a route needs beyond its path to answer 200.
HEADERS = {"/identity/v3/auth/tokens": {"X-Subject-Token": "admin:admin"},
           "/v2.1/os-hypervisors/<hypervisor_ref>/uptime": {"OpenStack-API-Version": "compute 2.87"},  # gone in 2.88
           "/v2.1/os-hypervisors/statistics": {"OpenStack-API-Version": "compute 2.87"},
           "/v2.1/os-hypervisors/<pattern>/search": {"OpenStack-API-Version": "compute 2.52"},  # gone in 2.53
           "/v2.1/os-hypervisors/<pattern>/servers": {"OpenStack-API-Version": "compute 2.52"}}
# The routes that answer otherwise here, and why: still counted.
STATUS = {"/readyz": 503, "/static/<path:filename>": 404}  # no worker beats in a unit test; no such file


def get_rules(app: Flask) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ()))


def get_routes(app: Flask) -> list[tuple[str, str]]:
    """(rule, query) for every GET rule: its usual query (else none), then the more queries it has."""
    return [(rule, query) for rule in get_rules(app) for query in [QUERY.get(rule, ""), *MORE_QUERIES.get(rule, [])]]


def filled(rule: str, ids: dict[str, str]) -> str:
    return PARAMETER.sub(lambda m: ids[m.group(1)], rule)


CALLERS = {"admin": "admin:admin", "project": "alice:demo"}  # the project's caller owns none of the history
# Known to read past what they answer, each with why: the test fails once one stops, so the entry goes.
KNOWN_SCANS: dict[tuple[str, str, str], str] = {}


def cost(world: Seeded, monkeypatch: pytest.MonkeyPatch, rule: str, query: str = "", caller: str = "admin") -> Sent:
    """The commands of one GET; the admin's must answer (the project's caller may be refused: still counted)."""
    path = filled(rule, world.ids) + (f"?{query}" if query else "")
    client = world.app.test_client()

    def send() -> None:
        headers = {**ADMIN, "X-Auth-Token": CALLERS[caller], **HEADERS.get(rule, {})}
        response = client.get(path, headers=headers)
        answered = response.status_code < 400 or response.status_code == STATUS.get(rule)
        assert answered or (caller != "admin" and response.status_code < 500), (path, response.get_data(as_text=True))

    send()  # warm: the first call may fill caches
    with sending(monkeypatch) as sent:
        send()
    return sent


def test_every_get_rule_has_its_parameters_seeded(worlds) -> None:
    rules = get_rules(worlds["base"].app)
    assert len(rules) > 60
    for rule in rules:
        filled(rule, worlds["base"].ids)  # a KeyError names the parameter this test does not know


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("grown", ["fleet", "history"])
def test_every_get_route__the_same_commands_with_a_larger_fleet_or_history(worlds, monkeypatch, grown,
                                                                           caller) -> None:
    base, large = worlds["base"], worlds[grown]
    growing = {}
    for rule, query in get_routes(base.app):
        small_cost = cost(base, monkeypatch, rule, query, caller)
        large_cost = cost(large, monkeypatch, rule, query, caller)
        if rule in ALL_HOSTS and grown == "fleet" and query == QUERY.get(rule, ""):
            same = small_cost.round_trips == large_cost.round_trips
        else:
            same = small_cost.commands == large_cost.commands
        if not same:
            growing[f"{rule}?{query}"] = (len(small_cost.commands), len(large_cost.commands),
                                          small_cost.round_trips, large_cost.round_trips)
    known = {route for who, world, route in KNOWN_SCANS if (who, world) == (caller, grown)}
    assert set(growing) == known, (
        "(commands, commands, round trips, round trips) small vs large: " + repr(growing))


def test_the_all_hosts_list_names_only_routes_the_app_serves(worlds) -> None:
    assert set(ALL_HOSTS) <= set(get_rules(worlds["base"].app))


# The writes an operator runs often, in an order that leaves the world as it found it but for the server.
WRITES = [
    ("POST", "/v2.1/os-aggregates/<aggregate_ref>/action", "2.96", {"add_host": {"host": "host-0045"}}),
    ("POST", "/v2.1/os-aggregates/<aggregate_ref>/action", "2.96", {"remove_host": {"host": "host-0045"}}),
    ("PUT", "/v2.1/os-aggregates/<spare_aggregate>", "2.96", {"aggregate": {"availability_zone": "az-moved"}}),
    ("PUT", "/v2.1/os-aggregates/<spare_aggregate>", "2.96", {"aggregate": {"availability_zone": "az-spare"}}),
    ("PUT", "/v2.1/os-services/<service_ref>", "2.53", {"status": "disabled", "disabled_reason": "maintenance"}),
    ("PUT", "/v2.1/os-services/<service_ref>", "2.53", {"status": "enabled"}),
    ("PUT", "/v2.1/os-services/disable", "2.1", {"host": "host-0003", "binary": "nova-compute"}),
    ("PUT", "/v2.1/os-services/enable", "2.1", {"host": "host-0003", "binary": "nova-compute"}),
    ("POST", "/v2.1/servers", "2.96", {"server": {"name": "vm", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b",
                                                   "flavorRef": "1", "networks": "none",
                                                   "availability_zone": "az-1"}}),
]


@pytest.fixture(scope="module")
def write_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Seeded]:
    return {name: seeded(tmp_path_factory.mktemp(f"writes-{name}"), hosts, 30)
            for name, hosts in {"base": 50, "fleet": 500}.items()}


def test_operator_writes__the_same_commands_at_50_and_500_hosts(write_worlds, monkeypatch) -> None:
    growing = {}
    for method, rule, version, body in WRITES:
        sent = []
        for world in write_worlds.values():
            client = world.app.test_client()
            path = filled(rule, world.ids)
            with sending(monkeypatch) as counted:
                response = client.open(path, method=method, json=body,
                                       headers={**ADMIN, "OpenStack-API-Version": f"compute {version}"})
            assert response.status_code < 300, (method, path, response.get_data(as_text=True))
            sent.append(counted)
        if sent[0].commands != sent[1].commands:
            growing[f"{method} {rule} {body}"] = (len(sent[0].commands), len(sent[1].commands),
                                                  sent[0].round_trips, sent[1].round_trips)
    assert growing == {}, "(commands, commands, round trips, round trips) at 50 vs 500 hosts: " + repr(growing)


def test_placing_a_zoned_server__the_same_commands_at_50_and_500_hosts(write_worlds, monkeypatch) -> None:
    """The zone's placement window only (``placement:{zone}``), not every aggregate's hosts."""
    sent = []
    for world in write_worlds.values():
        flavor = world.store.get_flavor("2")
        assert flavor is not None
        inst = Instance(name="vm", project_id="demo", user_id="demo", flavor=flavor, availability_zone="az-1")
        with sending(monkeypatch) as counted:
            chosen = scheduler.claim_first_fit(world.store, inst.id, flavor,
                                               scheduler.select_hosts(world.store, inst, flavor))
        assert chosen.name in {f"host-{index:04d}" for index in range(5, 10)}
        world.store.release_claim(chosen.name, inst.id)
        sent.append(counted.commands)
    assert sent[0] == sent[1]
