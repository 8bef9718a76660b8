"""Live migration through the real clients, on a fleet whose copies are slow enough to steer."""
from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import DevServer
from tests.e2e.test_real_clients import nova, sdk
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e


def server_on(dev: DevServer, host: str, name: str):  # noqa: ANN201
    conn = sdk(dev)
    server = conn.compute.create_server(name=name, image_id=IMAGE_ID, flavor_id="1", networks="none",
                                        availability_zone=f"nova:{host}")
    return conn, conn.compute.wait_for_server(server, status="ACTIVE", wait=90, interval=0.3)


def running_migration(dev: DevServer, server_id: str) -> dict:
    def running() -> dict | None:
        listed = dev.openstack("server", "migration", "list", "--server", server_id, "-f", "json")
        assert listed.returncode == 0, listed.stderr
        rows = [r for r in json.loads(listed.stdout) if r["Status"] == "running"]
        return rows[0] if rows else None

    return wait_for(running, 90, f"a running migration of {server_id}", interval=0.5)


def test_openstack_cli__live_migrate_to_a_host_then_force_complete(slow_migration_dev_server: DevServer) -> None:
    dev = slow_migration_dev_server
    conn, server = server_on(dev, "compute-kvm-1", "cli-lm-force")
    started = dev.openstack("server", "migrate", "--live-migration", "--host", "compute-kvm-2", server.id)
    assert started.returncode == 0, started.stderr
    migration = running_migration(dev, server.id)
    assert conn.compute.get_server(server.id).status == "MIGRATING"
    forced = dev.openstack("server", "migration", "force", "complete", server.id, str(migration["Id"]))
    assert forced.returncode == 0, forced.stderr
    wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", 90, "migration to complete")
    assert conn.compute.get_server(server.id).compute_host == "compute-kvm-2"
    actions = [a.action for a in conn.compute.server_actions(server.id)]
    assert actions[:2] == ["live_migration_force_complete", "live-migration"]


def test_openstack_cli__live_migrate_then_abort(slow_migration_dev_server: DevServer) -> None:
    dev = slow_migration_dev_server
    conn, server = server_on(dev, "compute-kvm-1", "cli-lm-abort")
    started = dev.openstack("server", "migrate", "--live-migration", server.id)
    assert started.returncode == 0, started.stderr
    migration = running_migration(dev, server.id)
    shown = dev.openstack("server", "migration", "show", server.id, migration["UUID"], "-f", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["Status"] == "running"
    aborted = dev.openstack("server", "migration", "abort", server.id, str(migration["Id"]))
    assert aborted.returncode == 0, aborted.stderr
    wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", 90, "abort to roll back")
    assert conn.compute.get_server(server.id).compute_host == "compute-kvm-1"


def test_novaclient__live_migrate_at_2_1_and_force_complete_at_2_22(slow_migration_dev_server: DevServer) -> None:
    dev = slow_migration_dev_server
    conn, server = server_on(dev, "compute-kvm-2", "nova-lm")
    nova(dev, "2.1").servers.live_migrate(server.id, None, False, False)
    client = nova(dev, "2.23")
    migration = wait_for(lambda: next(iter(client.server_migrations.list(server.id)), None), 90,
                         "the migration to show up")
    wait_for(lambda: client.server_migrations.get(server.id, migration.id).status == "running", 90,
             "the copy to start")
    client.server_migrations.live_migrate_force_complete(server.id, migration.id)
    wait_for(lambda: conn.compute.get_server(server.id).status == "ACTIVE", 90, "migration to complete")
    assert conn.compute.get_server(server.id).compute_host != "compute-kvm-2"
