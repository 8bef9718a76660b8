"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can do its work); no token, not microversioned.

``/readyz`` is 200 ``{"store": "ok", "broker": "ok", "workers": N}`` when the store (Redis) and
the broker answer and at least ``[health] min_workers`` workers have a heartbeat that has not
expired (workers/heartbeat.py). Otherwise it is 503 with the same keys, each part that failed
saying why, and ``failed`` listing them. Each probe gives up after ``[health]
probe_timeout_seconds`` without retrying, so an unreachable Redis costs well under a second.
"""
from __future__ import annotations

import threading
import urllib.parse
from typing import Any

import redis
from flask import Blueprint, Response, jsonify
from redis.backoff import NoBackoff
from redis.retry import Retry

from api import current

bp = Blueprint("health", __name__)

OK = "ok"
NOT_CHECKED = "not checked (no broker URL known)"
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
_broker_clients: dict[tuple[str, float], redis.Redis] = {}
_broker_lock = threading.Lock()


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": OK})


@bp.get("/readyz")
def readyz() -> Response:
    options = current.settings().health
    timeout = options.probe_timeout_seconds
    body: dict[str, Any] = {}
    failed: list[str] = []
    workers: int | None = None
    try:
        probe = current.service().store.probe(timeout)
        probe.ping()
        workers = len(probe.live_workers())
        body["store"] = OK
    except Exception as exc:  # noqa: BLE001 - any failure of the probe is the answer
        body["store"] = describe(exc)
        failed.append("store")
    body["broker"] = broker_status(timeout)
    if body["broker"] not in (OK, NOT_CHECKED):
        failed.append("broker")
    body["workers"] = workers
    if workers is None or workers < options.min_workers:
        failed.append("workers")
    if failed:
        body["failed"] = failed
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def describe(exc: Exception) -> str:
    return f"unreachable ({type(exc).__name__}: {str(exc)[:200]})"


def broker_url() -> str | None:
    """The broker the service's enqueuer publishes to (a Celery app's ``broker_url``), if it has one."""
    enqueuer = current.service().enqueuer
    conf = getattr(getattr(enqueuer, "app", None), "conf", None)
    url = getattr(conf, "broker_url", None)
    return url if isinstance(url, str) and url else None


def broker_status(timeout: float) -> str:
    url = broker_url()
    if url is None:
        return NOT_CHECKED
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    try:
        if scheme == "memory":
            return OK  # the in-process broker of ``compute-actions dev``
        if scheme in _REDIS_SCHEMES:
            _redis_broker(url, timeout).ping()
        else:
            _kombu_check(url, timeout)
    except Exception as exc:  # noqa: BLE001
        return describe(exc)
    return OK


def _redis_broker(url: str, timeout: float) -> redis.Redis:
    with _broker_lock:
        client = _broker_clients.get((url, timeout))
        if client is None:
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry=Retry(NoBackoff(), 0), max_connections=4)
            _broker_clients[(url, timeout)] = client
        return client


def _kombu_check(url: str, timeout: float) -> None:
    from kombu import Connection

    with Connection(url, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
