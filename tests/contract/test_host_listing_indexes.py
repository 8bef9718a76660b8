"""The indexes the fleet-wide admin reads use instead of the fleet or the history (issue 12 item 1):
``hosts:totals`` (os-hypervisors statistics), the trigram sets (hostname patterns), the service uuid
lookup, ``host:{name}:migrations`` (the service delete check) and ``identities`` (the dev directory). Each is compared with the answer
computed from every record, after the writes that move it; the races run on the real Redis."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml

from compute.models import (
    Flavor,
    Host,
    HostUsage,
    Image,
    InstanceAction,
    Migration,
    new_request_id,
)
from compute.states import MigrationStatus
from compute.store import Store
from compute.store.hosts import TOTAL_FIELDS, statistics_share
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tests.contract.conftest import SMALL, Backend, server, small_host

BIG = Flavor(id="big", name="m1.big", vcpus=3, ram=5000, disk=70)


def summed(store: Store) -> dict[str, int]:
    """What Nova's compute_node_statistics gives: every enabled host's record and usage, added up."""
    usage = store.usage_by_host()
    total = dict.fromkeys(TOTAL_FIELDS, 0)
    for host in store.list_hosts():
        for field, value in statistics_share(host, usage.get(host.name, HostUsage())).items():
            total[field] += value
    return total


def test_totals__follow_claims_releases_disables_changes_and_deletes(store: Store) -> None:
    for name in ("compute-1", "compute-2", "compute-3"):
        store.put_host(small_host(name, vcpus=8))
    assert store.host_statistics() == summed(store)
    assert store.host_statistics()["count"] == 3
    store.claim_resources("compute-1", "a", SMALL)
    store.claim_resources("compute-2", "b", BIG)
    store.claim_resources("compute-2", "c", SMALL)
    assert store.host_statistics() == summed(store)
    assert store.host_statistics()["running_vms"] == 3
    store.update_host("compute-2", enabled=False, disabled_reason="fan")
    assert store.host_statistics() == summed(store)
    assert store.host_statistics()["count"] == 2 and store.host_statistics()["running_vms"] == 1
    store.release_claim("compute-2", "c")  # on a disabled host: the totals do not hold it
    store.update_host("compute-2", enabled=True)
    assert store.host_statistics() == summed(store)
    assert store.host_statistics()["vcpus_used"] == SMALL.vcpus + BIG.vcpus
    store.update_host("compute-1", up=False)  # down but enabled still counts, as in Nova
    store.put_host(small_host("compute-3", vcpus=32))  # a changed record replaces its share
    assert store.host_statistics() == summed(store)
    store.delete_host("compute-3")
    store.release_claim("compute-1", "a")
    store.release_claim("compute-1", "a")  # a second release gives nothing back
    assert store.host_statistics() == summed(store)
    assert store.host_statistics()["count"] == 2


def test_totals__follow_a_fleet_file_that_adds_changes_and_drops_hosts(store: Store, tmp_path: Path) -> None:
    def apply(rows: list[dict[str, object]]) -> None:
        path = tmp_path / "fleet.yaml"
        flavors = [{"id": "2", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20}]
        path.write_text(yaml.safe_dump({"hosts": rows, "flavors": flavors}))
        assert seed_fleet(store, SimulatedFleet(store), path)

    apply([{"name": f"node-{i}", "vcpus": 8 + i} for i in range(4)])
    assert store.host_statistics() == summed(store) and store.host_statistics()["count"] == 4
    store.claim_resources("node-1", "a", SMALL)
    store.update_host("node-2", enabled=False)
    apply([{"name": "node-0", "vcpus": 64}, {"name": "node-1"}, {"name": "node-2"}, {"name": "node-9"}])
    assert store.host_statistics() == summed(store)
    assert store.host_statistics()["count"] == 3 and store.host_statistics()["running_vms"] == 1
    assert store.hosts_named_like("node-") == ["node-0", "node-1", "node-2", "node-9"]
    assert store.hosts_named_like("de-3") == []


@pytest.mark.timeout(60)
def test_totals__stay_exact_while_claims_and_disables_race(real_backend: Backend) -> None:
    store = real_backend.store()
    names = [f"compute-{i}" for i in range(3)]
    for name in names:
        store.put_host(small_host(name, vcpus=400))
    errors: list[BaseException] = []

    def claims(worker: int) -> None:
        try:
            own = Store(real_backend.client, prefix=real_backend.prefix)
            for i in range(40):
                host, server = names[i % 3], f"s-{worker}-{i}"
                own.claim_resources(host, server, SMALL)
                if i % 2:
                    own.release_claim(host, server)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def toggles() -> None:
        try:
            own = Store(real_backend.client, prefix=real_backend.prefix)
            for i in range(30):
                own.update_host(names[i % 3], enabled=bool(i % 2))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=claims, args=(w,)) for w in range(3)] + [threading.Thread(target=toggles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert store.host_statistics() == summed(store)


@pytest.mark.parametrize("pattern", ["compute", "te-1", "-1", "1", "ute-2", "rack-b", "zzz", "e-", "mpute-10"])
def test_hostname_pattern__the_trigram_answer_is_the_substring_answer(store: Store, pattern: str) -> None:
    names = [f"compute-{i}" for i in range(12)] + ["rack-b-compute-1", "edge-1"]
    for name in names:
        store.put_host(small_host(name))
    store.delete_host("compute-11")
    alive = [n for n in names if n != "compute-11"]
    assert store.hosts_named_like(pattern) == sorted(n for n in alive if pattern in n)


def test_service_uuid_lookup__finds_a_host_and_forgets_a_deleted_one(store: Store) -> None:
    store.put_host(small_host("compute-1"))
    wanted = Host(name="compute-1").service_uuid
    assert store.host_by_service_uuid(wanted) == "compute-1"
    store.delete_host("compute-1")
    assert store.host_by_service_uuid(wanted) is None


def migration(status: str = MigrationStatus.ACCEPTED, dest: str | None = "compute-2") -> Migration:
    return Migration(instance_uuid="i-1", migration_type="live-migration", status=status,
                     source_compute="compute-1", dest_compute=dest)


def ids_on(store: Store, host: str) -> list[int]:
    return [m.id for m in store.migrations_in_progress_on(host)]


def test_host_migrations__listed_under_both_hosts_until_over(store: Store) -> None:
    created = store.create_migration(migration())
    done = store.create_migration(migration(MigrationStatus.COMPLETED))
    assert ids_on(store, "compute-1") == ids_on(store, "compute-2") == [created.id]
    assert ids_on(store, "compute-3") == []
    queued = store.update_migration(created.id, lambda m: setattr(m, "status", MigrationStatus.QUEUED), known=created)
    assert ids_on(store, "compute-2") == [created.id]
    store.update_migration(created.id, lambda m: setattr(m, "status", MigrationStatus.ERROR), known=queued)  # the script
    assert ids_on(store, "compute-1") == ids_on(store, "compute-2") == []
    assert done.id not in ids_on(store, "compute-1")


def test_host_migrations__the_watch_path_and_a_changed_destination(store: Store) -> None:
    created = store.create_migration(migration(dest=None))
    assert ids_on(store, "compute-1") == [created.id] and ids_on(store, "compute-2") == []
    store.update_migration(created.id, lambda m: setattr(m, "dest_compute", "compute-2"))
    moved = store.update_migration(created.id, lambda m: setattr(m, "dest_compute", "compute-3"))
    assert ids_on(store, "compute-2") == []  # listed there still, refused on the record
    assert ids_on(store, "compute-3") == [created.id]
    pipe = store._multi()
    moved.status = MigrationStatus.QUEUED
    store.put_migration(moved, pipe, previous_status=MigrationStatus.ACCEPTED)
    pipe.execute()
    assert ids_on(store, "compute-3") == [created.id]
    moved.status = MigrationStatus.CANCELLED
    store.overwrite_migration(moved)
    assert ids_on(store, "compute-1") == ids_on(store, "compute-3") == []


def test_rebuild__fills_what_a_store_written_before_the_indexes_lacks(backend: Backend) -> None:
    store = backend.store()
    for name in ("compute-1", "compute-2"):
        store.put_host(small_host(name))
    store.claim_resources("compute-1", "a", SMALL)
    created = store.create_migration(migration())
    expected = summed(store)
    old = [k for k in store.scan_keys("hosts:t*") + store.scan_keys("hosts:by_service_uuid")
           + store.scan_keys("host:*:migrations")]
    backend.client.delete(*old)
    assert store.hosts_named_like("compute") == [] and store.migrations_in_progress_on("compute-1") == []
    assert store.rebuild_listing_indexes() == 2
    assert store.rebuild_listing_indexes() == 0  # once
    assert store.host_statistics() == expected
    assert store.hosts_named_like("compute") == ["compute-1", "compute-2"]
    assert store.host_by_service_uuid(Host(name="compute-2").service_uuid) == "compute-2"
    assert ids_on(store, "compute-2") == [created.id]


def test_identities__each_record_kind_names_its_user_and_project_and_a_rebuild_finds_the_same(
        backend: Backend) -> None:
    store = backend.store()
    inst = server()
    inst.user_id, inst.project_id = "alice", "shop"
    store.put_instance(inst)
    store.record_action(InstanceAction(request_id=new_request_id(), action="lock", instance_uuid=inst.id,
                                       user_id="carol", project_id="shop"))
    store.create_migration(Migration(instance_uuid=inst.id, migration_type="migration", status="completed",
                                     user_id="dave", project_id="ops"))
    store.put_image(Image(id="img-1", name="backup", owner="ops", properties={"user_id": "erin"}))
    store.put_image(Image(id="img-2", name="public", owner="lab"))
    named = store.identities()
    assert named == [(None, "lab"), ("alice", "shop"), ("carol", "shop"), ("dave", "ops"), ("erin", "ops")]
    backend.client.delete(*store.scan_keys("identities"))
    assert store.rebuild_identities() == 5
    assert store.identities() == named
    assert store.rebuild_identities() == 0
