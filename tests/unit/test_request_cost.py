"""No request path reads O(fleet) or O(history) (issue 12): the Redis commands a request sends are
counted (every command, direct, in WATCH mode or queued in a pipeline) with a fleet or a history
ten times larger, and must not change."""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import yaml

from api.app import create_app
from compute import errors, migration_checks, scheduler
from compute.models import (
    Flavor,
    Instance,
    InstanceAction,
    Migration,
    new_request_id,
    utcnow,
)
from compute.service import ComputeService
from compute.settings import CONFIG_DIR, Settings
from compute.store import Store
from fleet.loader import read_fleet_file, seed_fleet
from fleet.simulator import SimulatedFleet
from tests.conftest import RecordingEnqueuer

ADMIN = {"X-Auth-Token": "admin:admin"}


class Counter:
    def __init__(self) -> None:
        self.commands: list[str] = []


@dataclass
class Sent:
    """What reached redis-py: each command with its argument count, and the round trips."""
    commands: list[tuple[str, int]] = field(default_factory=list)
    round_trips: int = 0


@contextmanager
def sending(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    """Count what reaches the client: direct calls, WATCH-mode pipeline calls and queued ones at execute
    (a pipeline is one round trip of many commands)."""
    sent = Sent()
    direct = redis.Redis.execute_command
    immediate = redis.client.Pipeline.immediate_execute_command
    execute = redis.client.Pipeline.execute

    def count_direct(self: Any, *args: Any, **options: Any) -> Any:
        sent.commands.append((str(args[0]).upper(), len(args)))
        sent.round_trips += 1
        return direct(self, *args, **options)

    def count_immediate(self: Any, *args: Any, **options: Any) -> Any:
        sent.commands.append((str(args[0]).upper(), len(args)))
        sent.round_trips += 1
        return immediate(self, *args, **options)

    def count_queued(self: Any, *args: Any, **options: Any) -> Any:
        sent.commands.extend((str(c[0][0]).upper(), len(c[0])) for c in self.command_stack)
        sent.round_trips += 1 if self.command_stack else 0
        return execute(self, *args, **options)

    with monkeypatch.context() as patch:
        patch.setattr(redis.Redis, "execute_command", count_direct)
        patch.setattr(redis.client.Pipeline, "immediate_execute_command", count_immediate)
        patch.setattr(redis.client.Pipeline, "execute", count_queued)
        yield sent


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """The commands' names only, filled when the block ends."""
    counter = Counter()
    with sending(monkeypatch) as sent:
        yield counter
    counter.commands = [name for name, _ in sent.commands]


def fleet_of(hosts: int, tmp_path: Path) -> Store:
    sample = read_fleet_file(CONFIG_DIR / "fleet.yaml")
    rows = [{"name": f"host-{i:04d}", "memory_mb": 65536 + (i % 7) * 1024, "vcpus": 64, "local_gb": 4000}
            for i in range(hosts)]
    path = tmp_path / f"fleet-{hosts}.yaml"
    path.write_text(yaml.safe_dump({"hosts": rows, "flavors": sample["flavors"], "images": sample["images"]}))
    store = Store(fakeredis.FakeRedis(decode_responses=True), prefix=f"cost{uuid.uuid4().hex[:6]}:")
    seed_fleet(store, SimulatedFleet(store), path)
    return store


def commands(monkeypatch: pytest.MonkeyPatch, request: Callable[[], Any]) -> list[str]:
    request()  # warm: the first call may fill caches
    with counting(monkeypatch) as counter:
        request()
    return counter.commands


def active_server(store: Store, host: str) -> Instance:
    flavor = store.get_flavor("2")
    assert flavor is not None
    inst = Instance(name="vm", project_id="admin", user_id="admin", flavor=flavor, host=host, node=host,
                    vm_state="active", power_state=1, launched_at=utcnow())
    store.claim_resources(host, inst.id, flavor)
    store.put_instance(inst)
    return inst


def view_cost(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hosts: int, path: str) -> list[str]:
    store = fleet_of(hosts, tmp_path)
    settings = Settings()
    client = create_app(settings, ComputeService(store, RecordingEnqueuer(), settings)).test_client()
    inst = active_server(store, "host-0003")
    for index in range(hosts // 10):  # more servers too, on more hosts: a page is a page
        active_server(store, f"host-{index % hosts:04d}")

    def get() -> None:
        response = client.get(path.format(id=inst.id), headers={**ADMIN, "OpenStack-API-Version": "compute 2.96"})
        assert response.status_code == 200, response.get_data(as_text=True)

    return commands(monkeypatch, get)


@pytest.mark.parametrize("path", ["/v2.1/servers/{id}", "/v2.1/servers/detail?limit=5", "/v2.1/servers?limit=5"])
def test_server_views__the_same_commands_at_50_and_500_hosts(monkeypatch, tmp_path, path) -> None:
    small, large = (view_cost(monkeypatch, tmp_path, hosts, path) for hosts in (50, 500))
    assert small == large
    assert len(small) < 40


def test_instance_actions__limit_one_costs_the_same_with_10_and_1000_actions(monkeypatch, tmp_path) -> None:
    store = fleet_of(5, tmp_path)
    settings = Settings()
    client = create_app(settings, ComputeService(store, RecordingEnqueuer(), settings)).test_client()
    counts = []
    for history in (10, 1000):
        inst = active_server(store, "host-0001")
        pipe_ids = [new_request_id() for _ in range(history)]
        for rid in pipe_ids:
            store.record_action(InstanceAction(request_id=rid, action="lock", instance_uuid=inst.id,
                                               user_id="admin", project_id="admin"))

        def get(server: str = inst.id, marker: str = pipe_ids[-3]) -> None:
            response = client.get(f"/v2.1/servers/{server}/os-instance-actions?limit=1&marker={marker}",
                                  headers={**ADMIN, "OpenStack-API-Version": "compute 2.58"})
            assert response.status_code == 200 and len(response.get_json()["instanceActions"]) == 1

        counts.append(commands(monkeypatch, get))
    assert counts[0] == counts[1]


SHAPES = ["create", "live", "no valid host"]


def placement_cost(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hosts: int, shape: str) -> list[str]:
    store = fleet_of(hosts, tmp_path)
    flavor = store.get_flavor("2")
    source = store.get_host("host-0000")
    assert flavor is not None and source is not None
    wanted = Flavor(id="huge", name="huge", vcpus=1, ram=1 << 30, disk=1) if shape == "no valid host" else flavor
    extra = migration_checks.destination_filters(source, {}) if shape == "live" else []

    def place() -> None:
        inst = Instance(name="vm", project_id="demo", user_id="demo", flavor=wanted, host=source.name)
        selection = scheduler.select_hosts(store, inst, wanted, extra_filters=extra)
        try:
            host = scheduler.claim_first_fit(store, inst.id, wanted, selection)
        except errors.NoValidHost as exc:
            assert shape == "no valid host" and "more hosts): ResourceFilter: not enough memory_mb" in exc.message
            return
        store.release_claim(host.name, inst.id)

    return commands(monkeypatch, place)


@pytest.mark.parametrize("shape", SHAPES)
def test_placement__the_same_commands_at_50_and_500_hosts(monkeypatch, tmp_path, shape) -> None:
    small, large = (placement_cost(monkeypatch, tmp_path, hosts, shape) for hosts in (50, 500))
    assert small == large
    assert len(small) < 200


def test_placement__explaining_a_full_fleet_names_a_few_and_counts_the_rest(tmp_path) -> None:
    store = fleet_of(500, tmp_path)
    huge = Flavor(id="huge", name="huge", vcpus=1, ram=1 << 30, disk=1)
    inst = Instance(name="vm", project_id="demo", user_id="demo", flavor=huge)
    with pytest.raises(errors.NoValidHost) as raised:
        scheduler.claim_first_fit(store, inst.id, huge, scheduler.select_hosts(store, inst, huge))
    explanation = raised.value.message.split("\n", 1)[1]
    named = [part for part in explanation.removeprefix("Rejected: ").split("; ") if part.startswith("host-")]
    assert len(named) == scheduler.NAMED_PER_REASON
    assert explanation.endswith(f"({500 - scheduler.NAMED_PER_REASON} more hosts): ResourceFilter: not enough memory_mb")
    assert scheduler.public_reason(raised.value.message) == "No valid host was found. There are not enough hosts available."


def admin_route_cost(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hosts: int, path: str, version: str,
                     method: str = "GET") -> list[str]:
    """The commands of an admin route over a fleet of ``hosts``, with 3 zoned aggregates of 5 hosts each,
    20 servers and, per host count, as many finished migrations (history the delete check must not read)."""
    store = fleet_of(hosts, tmp_path)
    settings = Settings()
    client = create_app(settings, ComputeService(store, RecordingEnqueuer(), settings)).test_client()
    for number in range(3):
        aggregate = store.create_aggregate(f"rack-{number}", availability_zone=f"az-{number}")
        for index in range(5):
            store.add_aggregate_host(aggregate.id, f"host-{number * 5 + index:04d}")
    for index in range(20):
        active_server(store, f"host-{index:04d}")
    for index in range(hosts):
        store.create_migration(Migration(instance_uuid=f"gone-{index}", migration_type="live-migration",
                                         status="completed", source_compute=f"host-{index:04d}",
                                         dest_compute=f"host-{hosts - 1:04d}"))
    store.update_host("host-0001", enabled=False)
    deleted = store.get_host(f"host-{hosts - 1:04d}")
    assert deleted is not None
    headers = {**ADMIN, "OpenStack-API-Version": f"compute {version}"}
    target = path.format(service_id=deleted.service_id, service_uuid=deleted.service_uuid)

    def send() -> None:
        response = client.open(target, method=method, headers=headers)
        assert response.status_code in (200, 204), response.get_data(as_text=True)

    if method == "DELETE":  # not repeatable: counted on its one run
        with counting(monkeypatch) as counter:
            send()
        return counter.commands
    return commands(monkeypatch, send)


ADMIN_ROUTES = [
    ("/v2.1/os-hypervisors/statistics", "2.1", "GET"),
    ("/v2.1/os-hypervisors/host-0003/search", "2.1", "GET"),
    ("/v2.1/os-hypervisors/host-000/servers", "2.1", "GET"),
    ("/v2.1/os-hypervisors/detail?hypervisor_hostname_pattern=st-001", "2.53", "GET"),
    ("/v2.1/os-hypervisors?hypervisor_hostname_pattern=host-0004&with_servers=true", "2.75", "GET"),
    ("/v2.1/os-availability-zone/detail", "2.1", "GET"),
    ("/v2.1/os-aggregates", "2.41", "GET"),
    ("/v2.1/os-services", "2.53", "GET"),
    ("/v2.1/os-services?host=host-0002", "2.11", "GET"),
    ("/v2.1/os-services/{service_id}", "2.1", "DELETE"),
    ("/v2.1/os-services/{service_uuid}", "2.53", "DELETE"),
]


@pytest.mark.parametrize(("path", "version", "method"), ADMIN_ROUTES)
def test_admin_routes__the_same_commands_at_50_and_500_hosts(monkeypatch, tmp_path, path, version, method) -> None:
    """Statistics from the totals, patterns of 3+ characters from the trigram sets, the zone detail and
    the service list in a fixed number of commands (their records in one MGET), the service delete from
    the host's own indexes: none of them grows with the fleet or the migration history."""
    small, large = (admin_route_cost(monkeypatch, tmp_path, hosts, path, version, method) for hosts in (50, 500))
    assert small == large
    assert len(small) < 40


def test_identity_directory__the_same_commands_with_10_and_100_servers_of_10_and_100_actions(monkeypatch,
                                                                                          tmp_path) -> None:
    counts = []
    for servers, actions in ((10, 10), (100, 100)):
        store = fleet_of(5, tmp_path)
        settings = Settings()
        client = create_app(settings, ComputeService(store, RecordingEnqueuer(), settings)).test_client()
        for index in range(servers):
            inst = active_server(store, f"host-{index % 5:04d}")
            for _ in range(actions):
                store.record_action(InstanceAction(request_id=new_request_id(), action="lock", instance_uuid=inst.id,
                                                   user_id=f"user-{index % 3}", project_id="admin"))

        def get(client: Any = client) -> None:
            response = client.get("/identity/v3/users", headers=ADMIN)
            assert response.status_code == 200
            assert {u["name"] for u in response.get_json()["users"]} == {"admin", "demo", "user-0", "user-1", "user-2"}

        counts.append(commands(monkeypatch, get))
    assert counts[0] == counts[1]
