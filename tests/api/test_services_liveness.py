"""os-services liveness: Nova's DB servicegroup driver over the workers' heartbeats.

Every worker's heartbeat is the report of the whole simulated fleet (one key, whatever the
number of hosts). A host is up while its last report is at most ``service_down_time`` old; one
the fleet control takes down stops reporting, so it goes ``down`` once that much time has
passed, its ``updated_at`` frozen at its last report, while forced_down is down at once. The
timing cases run on the real Redis with a real heartbeat thread and bounded waits.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from api.app import create_app
from compute import scheduler
from compute.models import utcnow
from compute.service import ComputeService
from compute.settings import HealthOptions, Settings
from compute.store import Store
from compute.store.heartbeats import WorkerHeartbeat
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tests.api.conftest import ADMIN, mv
from tests.conftest import RecordingEnqueuer, real_redis_or_fail
from tests.support.wait import wait_for
from workers.heartbeat import HeartbeatThread

DOWN_TIME = 4.0  # service_down_time of these tests: long enough to see "up" first, short to wait out
FLEET = "/compute-actions/v1/fleet/hosts"


def build(client: Any, settings: Settings) -> tuple[Store, FlaskClient]:
    store = Store(client, prefix=f"live{uuid.uuid4().hex[:8]}:", service_down_time=settings.service_down_time)
    seed_fleet(store, SimulatedFleet(store), settings.fleet.fleet_file)
    return store, create_app(settings, ComputeService(store, RecordingEnqueuer(), settings)).test_client()


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"service_down_time": DOWN_TIME})


@pytest.fixture
def real(live_settings: Settings) -> Iterator[tuple[Store, FlaskClient]]:
    store, client = build(real_redis_or_fail(), live_settings)
    try:
        yield store, client
    finally:
        store.delete_all()


@pytest.fixture
def beating(real: tuple[Store, FlaskClient]) -> Iterator[HeartbeatThread]:
    thread = HeartbeatThread(real[0], "worker1@test", HealthOptions(heartbeat_interval_seconds=0.2,
                                                                    heartbeat_ttl_seconds=2.0))
    thread.start()
    wait_for(lambda: thread.beats >= 1, 10, "the first heartbeat")
    yield thread
    thread.stop()


def by_host(client: FlaskClient, version: str = "2.11") -> dict[str, dict[str, Any]]:
    response = client.get("/v2.1/os-services", headers={**ADMIN, **mv(version)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {s["host"]: s for s in response.get_json()["services"]}


def take(client: FlaskClient, host: str, up: bool) -> None:
    response = client.patch(f"{FLEET}/{host}", json={"up": up}, headers=ADMIN)
    assert response.status_code == 200, response.get_data(as_text=True)


def hypervisor_state(client: FlaskClient, host: str) -> str:
    found = client.get("/v2.1/os-hypervisors/detail", headers=ADMIN).get_json()["hypervisors"]
    return next(h["state"] for h in found if h["hypervisor_hostname"] == host)


def filter_answer(store: Store, host: str) -> str | None:
    record = store.get_host(host)
    assert record is not None
    return scheduler.compute_filter(record, store.get_usage(host))


@pytest.mark.redis
def test_updated_at_follows_the_reports(real: tuple[Store, FlaskClient], beating: HeartbeatThread) -> None:
    store, client = real
    first = by_host(client)["compute-kvm-1"]
    assert first["state"] == "up"
    assert first["updated_at"] == store.get_host("compute-kvm-1").last_seen_up  # type: ignore[union-attr]
    moved = wait_for(lambda: by_host(client)["compute-kvm-1"]["updated_at"] > first["updated_at"] or None, 10,
                     "updated_at to move with the next report")
    assert moved


@pytest.mark.redis
def test_a_host_taken_down_goes_down_after_service_down_time(real: tuple[Store, FlaskClient],
                                                             beating: HeartbeatThread) -> None:
    store, client = real
    take(client, "compute-kvm-2", up=False)
    just_after = by_host(client)["compute-kvm-2"]
    # Like a nova-compute that died: still "up" until its last report is service_down_time old,
    # but nothing is sent to it any more.
    assert (just_after["state"], just_after["forced_down"]) == ("up", False)
    assert filter_answer(store, "compute-kvm-2") == "ComputeFilter: service is down"
    frozen = just_after["updated_at"]
    went_down = wait_for(lambda: by_host(client)["compute-kvm-2"]["state"] == "down", DOWN_TIME * 4,
                         lambda: f"compute-kvm-2 to be down: {by_host(client)['compute-kvm-2']}")
    assert went_down
    now = by_host(client)
    assert (now["compute-kvm-2"]["updated_at"], now["compute-kvm-2"]["forced_down"]) == (frozen, False)
    assert now["compute-kvm-1"]["state"] == "up" and now["compute-kvm-1"]["updated_at"] > frozen
    assert hypervisor_state(client, "compute-kvm-2") == "down"
    assert filter_answer(store, "compute-kvm-2") == "ComputeFilter: service is down"
    assert filter_answer(store, "compute-kvm-1") is None
    take(client, "compute-kvm-2", up=True)
    assert by_host(client)["compute-kvm-2"]["state"] == "up"
    assert filter_answer(store, "compute-kvm-2") is None


@pytest.mark.redis
def test_every_host_is_down_once_no_process_reports(real: tuple[Store, FlaskClient]) -> None:
    store, client = real
    thread = HeartbeatThread(store, "worker1@test", HealthOptions(heartbeat_interval_seconds=0.2,
                                                                  heartbeat_ttl_seconds=2.0))
    thread.start()
    wait_for(lambda: thread.beats >= 1, 10, "the first heartbeat")
    thread.stop()  # the last worker stops: nothing reports for any host
    wait_for(lambda: {s["state"] for s in by_host(client).values()} == {"down"}, DOWN_TIME * 4,
             lambda: f"every service down: {by_host(client)}")
    assert {filter_answer(store, h.name) for h in store.list_hosts()} == {"ComputeFilter: service is down"}
    assert HeartbeatThread(store, "worker2@test", HealthOptions()).beat_once()
    assert {s["state"] for s in by_host(client).values()} == {"up"}


def test_forced_down_is_down_at_once_while_reporting(live_settings: Settings) -> None:
    store, client = build(fakeredis.FakeRedis(decode_responses=True), live_settings)
    store.record_heartbeat(WorkerHeartbeat(name="w@h", pid=1, hostname="h", time=utcnow(),
                                           interval_seconds=10, ttl_seconds=30))
    response = client.put("/v2.1/os-services/force-down", headers={**ADMIN, **mv("2.11")},
                          json={"host": "compute-kvm-3", "binary": "nova-compute", "forced_down": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert (by_host(client)["compute-kvm-3"]["state"], by_host(client)["compute-kvm-3"]["forced_down"]) == (
        "down", True)
    assert filter_answer(store, "compute-kvm-3") == "ComputeFilter: service is down"


def test_without_any_report_the_fleet_control_alone_decides(live_settings: Settings) -> None:
    """No process ever reported (no worker ran on this store): no heartbeat to age, so down is at once."""
    _, client = build(fakeredis.FakeRedis(decode_responses=True), live_settings)
    before = by_host(client)["compute-kvm-2"]
    assert before["state"] == "up"
    take(client, "compute-kvm-2", up=False)
    after = by_host(client)["compute-kvm-2"]
    assert after["state"] == "down" and after["updated_at"] >= before["updated_at"]
    take(client, "compute-kvm-2", up=True)
    assert by_host(client)["compute-kvm-2"]["state"] == "up"


def test_a_beat_writes_the_same_three_keys_whatever_the_fleet(live_settings: Settings) -> None:
    """One report for every host: a beat never writes per-host keys (10,000 hosts cost one SET)."""
    client = fakeredis.FakeRedis(decode_responses=True)
    store, _ = build(client, live_settings)

    def snapshot() -> dict[str, Any]:
        return {key: client.dump(key) for key in client.scan_iter(store.prefix + "*")}

    before = snapshot()
    store.record_heartbeat(WorkerHeartbeat(name="w@h", pid=1, hostname="h", time=utcnow(),
                                           interval_seconds=10, ttl_seconds=30))
    after = snapshot()
    changed = {key for key in after if before.get(key) != after[key]}
    assert changed == {store.prefix + "worker:w@h", store.prefix + "workers", store.prefix + "fleet:reported_at"}
    assert len(store.list_hosts()) == 7 and not any(key.startswith(store.prefix + "host:") for key in changed)
