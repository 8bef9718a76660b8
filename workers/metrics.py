"""The Prometheus side of compute/telemetry.py: the families, multiprocess mode, the worker's exporter.

Counters and histograms live in the process that counts them. Several processes of one
service (gunicorn's workers, Celery's prefork children) share them through
``PROMETHEUS_MULTIPROC_DIR``: each process writes its own files there and a scrape adds
them up (prometheus_client's multiprocess mode). ``compute-actions api``, and ``compute-actions
worker`` when it has an exporter, set that variable (to a fresh temporary folder unless the
operator gave one) before any family exists, which is why the families are made by
:func:`install`, not at import.

Where to scrape (README, "Metrics and logs"): each API instance's ``/metrics`` (its own
requests and accepted actions, plus the deployment-wide gauges read from Redis), and each
worker instance's exporter at ``[metrics] worker_bind`` (what its processes ran). Every
instance has a folder of its own, so nothing is counted twice.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
    values,
)
from prometheus_client.registry import Collector

from compute import telemetry

LOG = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "compute_actions_"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ACTION_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
STEP_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def _never_raises(method: Callable[..., None]) -> Callable[..., None]:
    """A metric that cannot be written (a full disk under the multiprocess folder) must not fail an action."""
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            LOG.warning("could not record metric %s", method.__name__, exc_info=True)

    return guarded


class PrometheusTelemetry(telemetry.Telemetry):
    """Every counter and histogram we export (the gauges are read from Redis: api/views/metrics.py)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.http_requests = Counter(f"{PREFIX}http_requests", "API requests answered, by route and status code",
                                     ["method", "route", "code"], registry=registry)
        self.http_duration = Histogram(f"{PREFIX}http_request_duration_seconds", "API request latency, by route",
                                       ["method", "route"], buckets=HTTP_BUCKETS, registry=registry)
        self.accepted = Counter(f"{PREFIX}actions_accepted", "Actions the API accepted and queued",
                                ["action"], registry=registry)
        self.ended = Counter(f"{PREFIX}actions_ended", "Actions that ended, by result (succeeded or failed)",
                             ["action", "result"], registry=registry)
        self.action_duration = Histogram(f"{PREFIX}action_duration_seconds",
                                         "Time from an action's acceptance to its end",
                                         ["action"], buckets=ACTION_BUCKETS, registry=registry)
        self.step_duration = Histogram(f"{PREFIX}step_duration_seconds",
                                       "Time from a step becoming current to its end, waits included",
                                       ["action", "step"], buckets=STEP_BUCKETS, registry=registry)
        self.rejections = Counter(f"{PREFIX}scheduler_rejections", "Hosts the scheduler turned down, by filter",
                                  ["filter"], registry=registry)
        self.reaper = Counter(f"{PREFIX}reaper_rescues",
                              "Stale actions the reaper took over: resumed, or abandoned (rolled back)",
                              ["outcome"], registry=registry)

    @_never_raises
    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    @_never_raises
    def action_accepted(self, action: str) -> None:
        self.accepted.labels(action).inc()

    @_never_raises
    def action_ended(self, action: str, result: str, seconds: float) -> None:
        self.ended.labels(action, result).inc()
        self.action_duration.labels(action).observe(seconds)

    @_never_raises
    def step_finished(self, action: str, step: str, seconds: float) -> None:
        self.step_duration.labels(action, step).observe(seconds)

    @_never_raises
    def host_rejected(self, filter_name: str) -> None:
        self.rejections.labels(filter_name).inc()

    @_never_raises
    def reaper_rescued(self, *, abandoned: bool) -> None:
        self.reaper.labels("abandoned" if abandoned else "resumed").inc()


_installed: PrometheusTelemetry | None = None
_install_lock = threading.Lock()


def install() -> PrometheusTelemetry:
    """Make the Prometheus observer this process's (once; the families are made on the first call)."""
    global _installed
    with _install_lock:
        if _installed is None:
            disable_created_metrics()  # the "_created" series, one per label set, which nobody reads
            _installed = PrometheusTelemetry()
        telemetry.install(_installed)
        return _installed


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def configure_multiprocess(purpose: str) -> tuple[str, bool]:
    """Point this process and its children at a multiprocess folder, emptied of an earlier run's files.

    The operator's ``PROMETHEUS_MULTIPROC_DIR`` if set (one per service instance), else a new
    temporary folder. Returns the folder and whether it was made here (to remove at exit).
    Must run before :func:`install`; it also resets prometheus_client's choice of value class in
    case the library was imported before the variable was set.
    """
    given = multiprocess_dir()
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        created = False
    else:
        path = Path(tempfile.mkdtemp(prefix=f"compute-actions-{purpose}-metrics-"))
        os.environ[MULTIPROC_ENV] = str(path)
        created = True
    values.ValueClass = values.get_value_class()
    return str(path), created


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """A child process exited (gunicorn's ``child_exit``): drop its live-gauge files."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


class _Forward(Collector):
    """Another registry's families, to serve beside collectors of a scrape's own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator:  # type: ignore[type-arg]
        yield from self.registry.collect()


def scrape_registry() -> CollectorRegistry:
    """What this process family counted: all processes' files in multiprocess mode, else this process's."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    return registry


def start_worker_exporter(bind: str) -> object | None:
    """Serve ``/metrics`` for this worker instance on ``host:port`` (a daemon thread); None if it cannot bind."""
    from prometheus_client import start_http_server

    host, _, port = bind.rpartition(":")
    try:
        server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=scrape_registry())
    except (OSError, ValueError) as exc:
        LOG.error("worker metrics: cannot serve on %s (%s); this worker runs without its exporter", bind, exc)
        return None
    LOG.info("worker metrics on http://%s/metrics", bind)
    return server
