"""Shared fixtures: a small fleet on fakeredis, and access to the real Redis for the tests that need it."""
from __future__ import annotations

import os
import uuid

import fakeredis
import pytest
import redis

from compute.settings import CONFIG_DIR, Settings
from compute.store import Store
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet

REAL_REDIS_URL = os.environ.get("COMPUTE_ACTIONS_TEST_REDIS", "redis://127.0.0.1:6379")


class RecordingEnqueuer:
    """Stands in for Celery in fast tests: remembers what would have been queued."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, float]] = []
        self.fail_with: Exception | None = None

    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0, *,
                action: str = "", server_id: str = "") -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((request_id, wake, countdown))


@pytest.fixture
def settings() -> Settings:
    return Settings(fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml"), "duration_scale": 1.0})


@pytest.fixture
def store() -> Store:
    client = fakeredis.FakeRedis(decode_responses=True)
    return Store(client, prefix=f"t{uuid.uuid4().hex[:8]}:")


@pytest.fixture
def fleet(store: Store, settings: Settings) -> SimulatedFleet:
    sim = SimulatedFleet(store, duration_scale=settings.fleet.duration_scale)
    seed_fleet(store, sim, settings.fleet.fleet_file)
    return sim


@pytest.fixture
def enqueuer() -> RecordingEnqueuer:
    return RecordingEnqueuer()


def real_redis_or_fail() -> redis.Redis:
    """Connect to the real Redis; in CI (CI=true) a missing Redis fails instead of skipping."""
    client = redis.Redis.from_url(REAL_REDIS_URL + "/0", decode_responses=True, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis is required in CI and is not answering at {REAL_REDIS_URL}: {exc}")
        pytest.skip(f"no Redis at {REAL_REDIS_URL}")
    return client


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    """In CI a Redis-backed test may not skip: a skip there would hide a broken environment."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() == "true" and item.get_closest_marker("redis"):
        report.outcome = "failed"
        report.longrepr = f"Redis-backed test {item.nodeid} was skipped in CI: {report.longrepr}"
