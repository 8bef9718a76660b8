"""``/healthz`` and ``/readyz``: public, fast, and honest about which part is down.

Most cases run on fakeredis. The outage cases run the API on a redis-server of the test's own
(a free port, SIGKILLed mid-test; the shared 6379 is never touched), with a real Celery
broker URL on it, and on a socket that accepts connections and never answers.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from api.app import create_app
from compute.models import utcnow
from compute.service import ComputeService
from compute.settings import CONFIG_DIR, Settings
from compute.store import Store
from compute.store.heartbeats import WorkerHeartbeat
from tests.support.redis_server import redis_server
from tests.support.wait import wait_for
from workers.celery_app import CeleryEnqueuer, make_celery
from workers.health import check_url, check_worker
from workers.heartbeat import HeartbeatThread

NOT_CHECKED = "not checked (no broker URL known)"


def beat(name: str = "w1@host", ttl: float = 30.0) -> WorkerHeartbeat:
    return WorkerHeartbeat(name=name, pid=os.getpid(), hostname=socket.gethostname(), time=utcnow(),
                           interval_seconds=ttl / 3, ttl_seconds=ttl)


def test_healthz_answers_without_a_token(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    assert "OpenStack-API-Version" not in response.headers


def test_readyz_is_503_until_a_worker_beats_then_200(client: FlaskClient, store: Store) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"store": "ok", "broker": NOT_CHECKED, "workers": 0, "failed": ["workers"]}
    assert response.headers["Cache-Control"] == "no-store"
    store.record_heartbeat(beat("w1@host"))
    store.record_heartbeat(beat("w2@host"))
    response = client.get("/readyz")
    assert (response.status_code, response.get_json()) == (200, {"store": "ok", "broker": NOT_CHECKED, "workers": 2})


def test_an_expired_heartbeat_does_not_count(client: FlaskClient, store: Store) -> None:
    store.record_heartbeat(beat("w1@host", ttl=0.2))
    assert client.get("/readyz").status_code == 200
    wait_for(lambda: client.get("/readyz").status_code == 503, 5, "the heartbeat to expire")
    assert client.get("/readyz").get_json()["workers"] == 0
    # The next beat of any worker drops the expired name from the index.
    store.record_heartbeat(beat("w2@host"))
    assert [b.name for b in store.live_workers()] == ["w2@host"]


def test_min_workers_is_configurable(make_app: Any, store: Store) -> None:
    client = make_app(health={"min_workers": 2}).test_client()
    store.record_heartbeat(beat("w1@host"))
    assert client.get("/readyz").get_json() == {"store": "ok", "broker": NOT_CHECKED, "workers": 1,
                                                "failed": ["workers"]}
    store.record_heartbeat(beat("w2@host"))
    assert client.get("/readyz").status_code == 200


def test_the_heartbeat_thread_beats_and_removes_its_record(store: Store, settings: Settings) -> None:
    options = settings.health.model_copy(update={"heartbeat_interval_seconds": 0.05})
    thread = HeartbeatThread(store, "t1@host", options)
    thread.start()
    wait_for(lambda: thread.beats >= 3, 5, "three beats")
    found = store.get_heartbeat("t1@host")
    assert found is not None and found.pid == os.getpid() and found.ttl_seconds == options.heartbeat_ttl_seconds
    thread.stop()
    assert not thread.is_alive() and store.get_heartbeat("t1@host") is None and store.live_workers() == []


# ---- a store of the test's own, stopped mid-test -------------------------------------------------------
def app_on(url: str, settings: Settings) -> tuple[Flask, Store]:
    """The API on a real store at ``url`` (db 1) with a real Celery broker (db 0), as in production."""
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(
        update={"store_url": f"{url}/1", "broker_url": f"{url}/0"})})
    store = Store(redis.Redis.from_url(settings.redis.store_url, decode_responses=True), prefix="health:")
    celery = make_celery(settings)
    service = ComputeService(store, CeleryEnqueuer(celery, settings.engine.queue), settings)
    return create_app(settings, service), store


@pytest.fixture
def real_settings() -> Settings:
    return Settings(fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml")})


def timed_get(client: FlaskClient, path: str) -> tuple[float, Any]:
    started = time.monotonic()
    response = client.get(path)
    return time.monotonic() - started, response


def test_readyz_on_a_real_store_then_503_fast_once_it_is_killed(tmp_path: Path, real_settings: Settings) -> None:
    with redis_server(tmp_path, durable=False) as own:
        app, store = app_on(own.url, real_settings)
        client = app.test_client()
        store.record_heartbeat(beat("w1@host"))
        assert client.get("/readyz").get_json() == {"store": "ok", "broker": "ok", "workers": 1}
        own.kill()
        elapsed, response = timed_get(client, "/readyz")
        assert elapsed < 1.0
        body = response.get_json()
        assert response.status_code == 503
        assert body["failed"] == ["store", "broker", "workers"]
        assert body["store"].startswith("unreachable (ConnectionError: ") and body["broker"].startswith("unreachable (")
        assert body["workers"] is None
        # The process itself is up: liveness does not depend on Redis.
        assert client.get("/healthz").status_code == 200


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


def test_readyz_gives_up_within_a_second_on_a_store_that_hangs(silent_port: int, real_settings: Settings) -> None:
    app, _ = app_on(f"redis://127.0.0.1:{silent_port}", real_settings)
    elapsed, response = timed_get(app.test_client(), "/readyz")
    assert elapsed < 1.0, elapsed
    body = response.get_json()
    assert response.status_code == 503 and body["failed"] == ["store", "broker", "workers"]
    assert "Timeout" in body["store"] and "Timeout" in body["broker"]


# ---- compute-actions health ---------------------------------------------------------------------------------
@contextlib.contextmanager
def serving(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_health_of_the_api_follows_readyz(app: Flask, store: Store) -> None:
    with serving(app) as root:
        ok, message = check_url(f"{root}/readyz")
        assert not ok and message.startswith(f"{root}/readyz: 503 ") and '"failed":["workers"]' in message
        store.record_heartbeat(beat())
        ok, message = check_url(f"{root}/readyz")
        assert ok and message.startswith(f"{root}/readyz: 200 ")
    ok, message = check_url(f"{root}/readyz", timeout=0.5)
    assert not ok and "not answering" in message


def test_health_sends_the_urls_credentials_as_basic_auth() -> None:
    seen: list[str | None] = []
    app = Flask("basic")

    @app.get("/")
    def root() -> Any:
        from flask import request

        seen.append(request.headers.get("Authorization"))
        return ("ok", 200) if request.authorization and request.authorization.password == "p@ss" else ("no", 401)

    with serving(app) as root_url:
        host = root_url.removeprefix("http://")
        assert check_url(f"http://admin:p%40ss@{host}/")[0]
        assert not check_url(f"http://admin:wrong@{host}/")[0]
        assert not check_url(f"http://{host}/")[0]
    assert seen[0] == "Basic YWRtaW46cEBzcw==" and seen[2] is None


def test_health_of_a_worker_reads_its_heartbeat(tmp_path: Path, real_settings: Settings) -> None:
    with redis_server(tmp_path, durable=False) as own:
        url = own.url
        settings = real_settings.model_copy(update={"redis": real_settings.redis.model_copy(
            update={"store_url": f"{url}/1", "key_prefix": "health:"})})
        store = Store(redis.Redis.from_url(settings.redis.store_url, decode_responses=True), prefix="health:")
        me = f"w1@{socket.gethostname()}"
        assert check_worker(settings, "w1@%h") == (False, f"worker {me}: no heartbeat in the last 30 s")
        store.record_heartbeat(beat(me))
        ok, message = check_worker(settings, "w1@%h")
        assert ok and message.startswith(f"worker {me}: alive (pid {os.getpid()}, last beat ")
        dead = beat(me).model_copy(update={"pid": 2**22 + 12345})  # above any pid_max: no such process
        store.record_heartbeat(dead)
        assert check_worker(settings, "w1@%h")[1].endswith(f"its process {dead.pid} is gone (last beat {dead.time})")
        own.kill()
        started = time.monotonic()
        ok, message = check_worker(settings, "w1@%h", timeout=0.5)
        assert not ok and "the store is unreachable" in message and time.monotonic() - started < 1.0
