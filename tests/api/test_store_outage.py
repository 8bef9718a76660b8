"""The store goes away: every request is Nova's 503 within a second, and one log line, not a traceback.

A real redis-server of this test's own on a free port (never the shared one on 6379), with
the store client built from ``[redis]`` client_options() as workers/runtime.py builds it. It
is killed (connections refused) or stopped with SIGSTOP (it accepts and never answers).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from api.app import create_app
from compute.actions.create_server import create_server
from compute.context import RequestContext
from compute.service import ComputeService
from compute.settings import CONFIG_DIR, Settings
from compute.store import Store
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tests.conftest import RecordingEnqueuer
from tests.support.contexts import IMAGE_ID
from tests.support.redis_server import RedisServer, redis_server
from tests.support.wait import wait_for

ADMIN = {"X-Auth-Token": "admin:admin"}
OWNER = {"X-Auth-Token": "alice:demo"}
BOUND = 1.0  # seconds: the "within a second"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path, durable=False) as server:
        yield server


@pytest.fixture
def outage(own_redis: RedisServer) -> Iterator[dict[str, Any]]:
    settings = Settings(fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml"), "duration_scale": 1.0})
    client = redis.Redis.from_url(f"redis://127.0.0.1:{own_redis.port}/0", decode_responses=True,
                                  **settings.redis.client_options())
    store = Store(client, prefix="outage:")
    fleet = SimulatedFleet(store, duration_scale=1.0)
    seed_fleet(store, fleet, settings.fleet.fleet_file)
    service = ComputeService(store, RecordingEnqueuer(), settings)
    owner = RequestContext(user_id="alice", project_id="demo", roles=["member", "reader"])
    server = create_server(service, owner, name="vm", flavor_id="1", image_id=IMAGE_ID)
    app = create_app(settings, service)
    yield {"client": app.test_client(), "server": server, "redis": own_redis}
    client.close()


def requests_of(server_id: str) -> list[tuple[str, str, dict[str, str], Any]]:
    return [
        ("GET", "/v2.1/servers", OWNER, None),
        ("GET", f"/v2.1/servers/{server_id}", OWNER, None),
        ("POST", f"/v2.1/servers/{server_id}/action", ADMIN, {"os-resetState": {"state": "error"}}),
        ("POST", f"/v2.1/servers/{server_id}/action", OWNER,
         {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}),
    ]


def assert_503_fast(client: FlaskClient, method: str, path: str, headers: dict[str, str], body: Any) -> None:
    started = time.monotonic()
    response = client.open(path, method=method, headers=headers, json=body)
    took = time.monotonic() - started
    assert response.status_code == 503, (method, path, response.get_data(as_text=True))
    assert response.get_json() == {"serviceUnavailable": {
        "code": 503, "message": "The compute service is temporarily unavailable; try again later."}}
    assert response.headers["Content-Type"] == "application/json"
    assert took < BOUND, f"{method} {path} took {took:.2f}s"


def test_store_killed__reads_and_writes_are_503_within_a_second(
        outage: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    client, server = outage["client"], outage["server"]
    assert client.get(f"/v2.1/servers/{server.id}", headers=OWNER).status_code == 200
    outage["redis"].kill()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for method, path, headers, body in requests_of(server.id):
            assert_503_fast(client, method, path, headers, body)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == len(requests_of(server.id)), [r.getMessage() for r in errors]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in errors)
    assert all("store is unavailable" in r.getMessage() for r in errors)


def test_store_hung__is_503_within_a_second_and_recovers(outage: dict[str, Any]) -> None:
    """SIGSTOP: connections are accepted and nothing answers, so only the socket timeout ends the wait."""
    client, server = outage["client"], outage["server"]
    outage["redis"].pause()
    for method, path, headers, body in requests_of(server.id)[:3]:
        assert_503_fast(client, method, path, headers, body)
    outage["redis"].resume()
    wait_for(lambda: client.get(f"/v2.1/servers/{server.id}", headers=OWNER).status_code == 200, 5,
             "the API to answer again")


def test_broker_refusal_escaping_the_enqueuer__is_a_503(client: FlaskClient, active_server: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """kombu's OperationalError is mapped as well, wherever it comes from."""
    from kombu.exceptions import OperationalError

    from compute.service import ComputeService as Service

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(Service, "get_instance", refuse)
    response = client.get(f"/v2.1/servers/{active_server.id}", headers=OWNER)
    assert response.status_code == 503
    assert list(response.get_json()) == ["serviceUnavailable"]
