"""The shipped sample fleet (config/fleet.yaml) lets a new user migrate: every host has another it can
live- and cold-migrate with, in pairs both ways, and at least three hosts take each other's servers;
the host a server booted with no zone lands on is one of those."""
from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from compute import migration_checks, scheduler
from compute.models import Host, HostUsage
from compute.settings import CONFIG_DIR
from tests.support.contexts import admin_ctx
from tests.support.engine import Engine
from tests.unit.live_migration_helpers import migrate as live_migrate
from tests.unit.live_migration_helpers import status_of

FLEET_FILE = Path(CONFIG_DIR) / "fleet.yaml"
EMPTY = HostUsage()


def shipped_hosts() -> list[Host]:
    return [Host(**raw) for raw in yaml.safe_load(FLEET_FILE.read_text())["hosts"]]


def live_destination(source: Host, dest: Host) -> bool:
    """``dest`` passes every live-migration filter for a server on ``source`` (the scheduler's path)."""
    return all(check(dest, EMPTY) is None for check in migration_checks.destination_filters(source, {}))


def test_every_host__has_another_that_takes_its_servers_live_and_back() -> None:
    hosts = shipped_hosts()
    for source in hosts:
        partners = [d.name for d in hosts if live_destination(source, d) and live_destination(d, source)]
        assert partners, f"no host can live-migrate with {source.name}"


def test_at_least_three_hosts__take_each_others_servers() -> None:
    hosts = shipped_hosts()
    trios = [trio for trio in itertools.combinations(hosts, 3)
             if all(live_destination(a, b) for a, b in itertools.permutations(trio, 2))]
    assert trios, "no three hosts accept each other's servers"


def test_mixed_types_and_versions_are_kept__so_the_pre_checks_still_refuse_some_hosts() -> None:
    hosts = shipped_hosts()
    assert len({h.hypervisor_type for h in hosts}) > 1
    assert len({(h.hypervisor_type, h.hypervisor_version) for h in hosts}) > 2
    assert len({h.cpu_model for h in hosts}) > 1
    assert any(not live_destination(a, b) for a, b in itertools.permutations(hosts, 2))


def test_every_host__has_a_cold_migration_destination_on_the_seeded_fleet(engine: Engine) -> None:
    for source in engine.store.list_hosts():
        inst = engine.boot(availability_zone=f"nova:{source.name}", ctx=admin_ctx())
        assert inst.host == source.name
        selection = scheduler.select_hosts(engine.store, inst, inst.flavor, ignore_hosts=[source.name])
        assert selection.candidates, f"no cold-migration destination for {source.name}: {selection.explain()}"
        live = scheduler.select_hosts(engine.store, inst, inst.flavor, ignore_hosts=[source.name],
                                      extra_filters=migration_checks.destination_filters(source, {}))
        assert live.candidates, f"no live-migration destination for {source.name}: {live.explain()}"


def test_a_server_booted_with_no_zone__live_migrates_with_no_host(engine: Engine) -> None:
    """The new user's first ``openstack server migrate --live-migration <id>``."""
    inst = engine.boot()
    first_host = inst.host
    assert first_host == "compute-kvm-3"  # the most free RAM: where every zone-less boot starts
    rid, migration = live_migrate(engine, inst)
    engine.drain()
    moved = engine.store.get_instance(inst.id)
    assert status_of(engine, migration) == "completed", engine.store.list_events(rid)
    assert (moved.vm_state, moved.task_state) == ("active", None)
    assert moved.host != first_host
