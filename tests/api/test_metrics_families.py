"""``GET /metrics`` after actions ran end to end through the API and the in-process engine: every family."""
from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.app import UNMATCHED_ROUTE, create_app
from api.views import metrics as metrics_view
from compute.settings import Settings
from compute.store import Store
from compute.store.heartbeats import WorkerHeartbeat
from fleet.simulator import SimulatedFleet
from tests.api.conftest import ADMIN, mv
from tests.conftest import REAL_REDIS_URL, real_redis_or_fail
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine, build_engine
from tests.support.metrics import prometheus, scraped_families  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("prometheus")

ACTION_ROUTE = "/v2.1/servers/<server_id>/action"
# What this API instance serves (the worker-side families come along: one process here, as in dev).
API_FAMILIES = {
    "compute_actions_http_requests", "compute_actions_http_request_duration_seconds",
    "compute_actions_actions_accepted", "compute_actions_actions_ended", "compute_actions_action_duration_seconds",
    "compute_actions_step_duration_seconds", "compute_actions_scheduler_rejections",
    "compute_actions_active_actions", "compute_actions_overdue_actions", "compute_actions_live_workers",
    "compute_actions_servers", "compute_actions_host_memory_mb_used", "compute_actions_host_running_vms",
}


def boot(engine_client: FlaskClient, engine: Engine) -> str:
    response = engine_client.post("/v2.1/servers", headers=ADMIN, json={"server": {
        "name": "vm", "flavorRef": "2", "imageRef": IMAGE_ID}})
    assert response.status_code == 202, response.get_json()
    engine.drain()
    return response.get_json()["server"]["id"]


def scrape(engine_client: FlaskClient) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    response = engine_client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    return scraped_families(response.get_data(as_text=True))


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float | None:
    for name, found, number in families.get(family, []):
        if name == sample and all(found.get(k) == v for k, v in labels.items()):
            return number
    return None


def test_after_a_live_migration__every_family_is_served(engine_client: FlaskClient, engine: Engine) -> None:
    server_id = boot(engine_client, engine)
    response = engine_client.post(f"/v2.1/servers/{server_id}/action", headers={**ADMIN, **mv("2.34")},
                        json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    assert response.status_code == 202
    engine.drain()
    families = scrape(engine_client)
    assert API_FAMILIES <= set(families), API_FAMILIES - set(families)
    assert value(families, "compute_actions_http_requests", "compute_actions_http_requests_total",
                 method="POST", route=ACTION_ROUTE, code="202") >= 1
    assert value(families, "compute_actions_http_request_duration_seconds",
                 "compute_actions_http_request_duration_seconds_count", method="POST", route=ACTION_ROUTE) >= 1
    assert not any(server_id in labels.get("route", "") for _, labels, _ in families["compute_actions_http_requests"])
    assert value(families, "compute_actions_actions_ended", "compute_actions_actions_ended_total",
                 action="live-migration", result="succeeded") >= 1
    assert value(families, "compute_actions_step_duration_seconds", "compute_actions_step_duration_seconds_count",
                 action="live-migration", step="TransferGuest") >= 1
    assert value(families, "compute_actions_active_actions", "compute_actions_active_actions") == 0
    assert value(families, "compute_actions_servers", "compute_actions_servers", status="ACTIVE") == 1


def test_an_unknown_path__is_one_unmatched_route_not_a_series_per_path(engine_client: FlaskClient) -> None:
    before = scrape(engine_client)
    for n in range(3):
        assert engine_client.get(f"/no/such/{uuid.uuid4()}/{n}").status_code == 404
    after = scrape(engine_client)
    labels = {"method": "GET", "route": UNMATCHED_ROUTE, "code": "404"}
    grown = (value(after, "compute_actions_http_requests", "compute_actions_http_requests_total", **labels) or 0) - (
        value(before, "compute_actions_http_requests", "compute_actions_http_requests_total", **labels) or 0)
    assert grown == 3
    assert not any("/no/such" in labels.get("route", "") for _, labels, _ in after["compute_actions_http_requests"])


def test_live_workers__counts_the_heartbeats_that_have_not_expired(engine_client: FlaskClient, store: Store) -> None:
    for name in ("w1@a", "w2@b"):
        store.record_heartbeat(WorkerHeartbeat(name=name, pid=1, hostname="a", time="2026-01-01T00:00:00",
                                               interval_seconds=10, ttl_seconds=30))
    assert value(scrape(engine_client), "compute_actions_live_workers", "compute_actions_live_workers") == 2


@pytest.mark.redis
def test_queue_depth__is_the_length_of_the_brokers_queue(store: Store, fleet: SimulatedFleet,
                                                         settings: Settings) -> None:
    broker = real_redis_or_fail()
    queue = f"ca-metrics-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(update={"engine": settings.engine.model_copy(update={"queue": queue})})
    engine = build_engine(store, fleet, settings)
    engine.service.enqueuer = SimpleNamespace(  # type: ignore[assignment]
        app=SimpleNamespace(conf=SimpleNamespace(broker_url=f"{REAL_REDIS_URL}/0")), enqueue=engine.queue.enqueue)
    try:
        broker.rpush(queue, "a", "b")
        broker.rpush(f"{queue}{metrics_view.KOMBU_PRIORITY_SEPARATOR}3", "c")
        families = scrape(create_app(settings, engine.service).test_client())
        assert value(families, "compute_actions_queue_depth", "compute_actions_queue_depth", queue=queue) == 3
    finally:
        broker.delete(queue, f"{queue}{metrics_view.KOMBU_PRIORITY_SEPARATOR}3")


def test_queue_depth__is_left_out_for_the_in_process_broker(engine_client: FlaskClient) -> None:
    assert "compute_actions_queue_depth" not in scrape(engine_client)
