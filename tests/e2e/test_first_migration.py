"""A new user's first migrations on the shipped sample fleet (config/fleet.yaml), with the real CLI:
a server booted with no zone, then ``openstack server migrate --live-migration <id>`` with no host,
and a cold migration confirmed. Its own `compute-actions dev`, so the fleet is as shipped."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import DevServer, running_dev_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fresh_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("first-migration-dev")) as server:
        yield server


def shown(dev: DevServer, server_id: str) -> dict[str, Any]:
    return dev.osc("server", "show", server_id, "-f", "json")


def wait_status(dev: DevServer, server_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        server = shown(dev, server_id)
        assert server["status"] != "ERROR", server
        return server if server["status"] == status else None

    return wait_for(reached, 90, f"{server_id} to be {status}", interval=0.5)


def test_live_migrate_with_no_host__a_server_booted_with_no_zone_moves(fresh_dev: DevServer) -> None:
    server = fresh_dev.boot("first-live")
    source = server["OS-EXT-SRV-ATTR:host"]
    # The host with the most free RAM, whose hypervisor is the newest: only its own kind can take a guest from it.
    assert (server["status"], source) == ("ACTIVE", "compute-kvm-3")
    started = fresh_dev.openstack("server", "migrate", "--live-migration", server["id"])
    assert started.returncode == 0, started.stdout + started.stderr
    wait_for(lambda: shown(fresh_dev, server["id"])["OS-EXT-SRV-ATTR:host"] != source, 90,
             "the server to move", interval=0.5)
    moved = wait_status(fresh_dev, server["id"], "ACTIVE")
    assert moved["OS-EXT-SRV-ATTR:host"] not in (None, source)
    [migration] = fresh_dev.osc("server", "migration", "list", "--server", server["id"], "-f", "json")
    assert (migration["Status"], migration["Type"]) == ("completed", "live-migration")
    assert (migration["Source Compute"], migration["Dest Compute"]) == (source, moved["OS-EXT-SRV-ATTR:host"])


def test_cold_migrate_and_confirm__a_server_booted_with_no_zone_moves(fresh_dev: DevServer) -> None:
    server = fresh_dev.boot("first-cold")
    source = server["OS-EXT-SRV-ATTR:host"]
    fresh_dev.osc("server", "migrate", server["id"])
    resized = wait_status(fresh_dev, server["id"], "VERIFY_RESIZE")
    assert resized["OS-EXT-SRV-ATTR:host"] not in (None, source)
    fresh_dev.osc("server", "migration", "confirm", server["id"])
    confirmed = wait_status(fresh_dev, server["id"], "ACTIVE")
    assert confirmed["OS-EXT-SRV-ATTR:host"] == resized["OS-EXT-SRV-ATTR:host"]
    [migration] = fresh_dev.osc("server", "migration", "list", "--server", server["id"], "-f", "json")
    assert (migration["Status"], migration["Type"]) == ("confirmed", "migration")
