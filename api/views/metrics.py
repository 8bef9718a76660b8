"""``GET /metrics``: what this API instance counted, and deployment-wide gauges read from Redis.

Counters and histograms (HTTP requests, accepted actions; workers/metrics.py names them all)
are those of this instance's processes: with ``PROMETHEUS_MULTIPROC_DIR`` set, as
``compute-actions api`` does, every gunicorn worker's files added up; otherwise this process's.
The gauges come from the store, not from process memory, so any API process answers them for
the whole deployment. It names hosts and their usage, so by default only an admin token reads
it (``[metrics] access = "admin"``: 401 without a token, 403 for others); ``access = "public"``
serves it like most exporters do, best with ``[metrics] bind``, a listener of its own on the
management network.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import redis
from flask import Blueprint, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from api import auth, current
from api.errors import forbidden
from compute.store import Store

bp = Blueprint("metrics", __name__)

ADMIN_ONLY_MESSAGE = "Only an administrator may read the metrics."
# kombu's Redis transport keeps a queue in one list per priority step: the queue's name for
# priority 0 (every message we send), then "<queue>\x06\x16<step>" (kombu's default steps).
KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
QUEUE_PROBE_TIMEOUT = 0.3
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")
_broker_clients: dict[str, redis.Redis] = {}
_broker_lock = threading.Lock()


class StoreCollector(Collector):
    """Gauges read at scrape time: a few counts, one usage hash per host and one record per live worker,
    never one per server (``compute_actions_servers`` is the store's ``instances:status`` count)."""

    def __init__(self, store: Store, queue_depth: Callable[[], int | None] = lambda: None,
                 queue: str = "") -> None:
        self.store = store
        self.queue_depth = queue_depth
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        active = GaugeMetricFamily("compute_actions_active_actions",
                                   "Actions accepted and not yet ended (queued, running or waiting)")
        active.add_metric([], self.store.active_run_count())
        yield active
        overdue = GaugeMetricFamily("compute_actions_overdue_actions",
                                    "Actions past their due time: the reaper will rescue them")
        overdue.add_metric([], len(self.store.due_runs(now, limit=10_000)))
        yield overdue
        workers = GaugeMetricFamily("compute_actions_live_workers",
                                    "Worker processes whose heartbeat has not expired")
        workers.add_metric([], len(self.store.live_workers()))
        yield workers
        depth = self.queue_depth()
        if depth is not None:
            queued = GaugeMetricFamily("compute_actions_queue_depth",
                                       "Deliveries waiting in the broker's queue for a worker", labels=["queue"])
            queued.add_metric([self.queue], depth)
            yield queued
        servers = GaugeMetricFamily("compute_actions_servers", "Servers not deleted, by status", labels=["status"])
        for status, count in sorted(self.store.status_counts().items()):
            servers.add_metric([status], count)
        yield servers
        ram = GaugeMetricFamily("compute_actions_host_memory_mb_used", "Claimed RAM per host", labels=["host"])
        vms = GaugeMetricFamily("compute_actions_host_running_vms", "Claims per host", labels=["host"])
        for name, usage in self.store.usage_by_host().items():
            ram.add_metric([name], usage.memory_mb_used)
            vms.add_metric([name], usage.running_vms)
        yield ram
        yield vms


class ProcessCollector(Collector):
    """This instance's counters and histograms: every process's files in multiprocess mode, else this process's."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry(auto_describe=False)
            multiprocess.MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()


def service_broker_url() -> str | None:
    """The broker the service's enqueuer publishes to (a Celery app's ``broker_url``; None in-process)."""
    conf = getattr(getattr(current.service().enqueuer, "app", None), "conf", None)
    url = getattr(conf, "broker_url", None)
    return url if isinstance(url, str) and url else None


def broker_client() -> redis.Redis | None:
    """A short-timeout client of the Redis broker the service's enqueuer publishes to (None for another broker)."""
    url = service_broker_url()
    if url is None or not url.startswith(REDIS_SCHEMES):
        return None
    with _broker_lock:
        if url not in _broker_clients:
            _broker_clients[url] = redis.Redis.from_url(url, socket_timeout=QUEUE_PROBE_TIMEOUT,
                                                        socket_connect_timeout=QUEUE_PROBE_TIMEOUT, max_connections=4)
        return _broker_clients[url]


def redis_queue_depth(queue: str) -> int | None:
    """LLEN of the queue's lists on a Redis broker (None for another broker, or one that does not answer)."""
    client = broker_client()
    if client is None:
        return None
    keys = [queue if step == 0 else f"{queue}{KOMBU_PRIORITY_SEPARATOR}{step}" for step in KOMBU_PRIORITY_STEPS]
    try:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        return sum(pipe.execute())
    except Exception:  # noqa: BLE001 - an unreachable broker leaves the gauge out; /readyz says why
        return None


def amqp_queue_depth(queue: str) -> int | None:
    """Messages ready in the queue on an AMQP broker (RabbitMQ), from a passive ``queue_declare``
    on a connection of its own with a short timeout: None for another broker or one that does
    not answer; 0 for a queue not declared yet (no worker has started on it, nothing was sent)."""
    url = service_broker_url()
    if url is None or not url.startswith(AMQP_SCHEMES):
        return None
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=QUEUE_PROBE_TIMEOUT, transport_options={
                "read_timeout": QUEUE_PROBE_TIMEOUT, "write_timeout": QUEUE_PROBE_TIMEOUT}) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=QUEUE_PROBE_TIMEOUT)
            try:
                _name, ready, _consumers = connection.channel().queue_declare(queue=queue, passive=True)
            except connection.channel_errors:  # NOT_FOUND: the broker closes the channel, the connection stays
                return 0
            return int(ready)
    except Exception:  # noqa: BLE001 - an unreachable broker leaves the gauge out; /readyz says why
        return None


def queue_depth(queue: str) -> int | None:
    """The queue's ready deliveries on the service's broker, Redis or RabbitMQ; None in-process (dev)."""
    depth = redis_queue_depth(queue)
    return depth if depth is not None else amqp_queue_depth(queue)


def authorize_scrape() -> None:
    """``[metrics] access``: "public" lets anyone read; "admin" needs an admin's token."""
    settings = current.settings()
    if settings.metrics.access == "public":
        return
    ctx = auth.context_builder(settings)(request.headers, g.request_id)  # 401 without a token
    if not ctx.is_admin:
        raise forbidden(ADMIN_ONLY_MESSAGE)


@bp.get("/metrics")
def metrics() -> Response:
    authorize_scrape()
    queue = current.settings().engine.queue
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(current.service().store, lambda: queue_depth(queue), queue))
    registry.register(ProcessCollector())
    # content_type, not mimetype: werkzeug would add a second "; charset=utf-8" to the latter.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
