"""Worker heartbeats: a daemon thread in each worker process that writes its record with a TTL.

``compute-actions worker`` calls :func:`attach_to_worker` (the thread starts when Celery's
consumer is ready, beside the reaper, under the worker's node name, and its record is removed
on a warm shutdown); ``compute-actions dev`` wraps its embedded worker in :func:`beating`.
The API's ``/readyz`` counts the live records and ``compute-actions health --worker NAME``
checks one (workers/health.py). A worker killed outright stops beating, and its record expires
``[health] heartbeat_ttl_seconds`` after its last beat.

An unreachable store is an outage, not a bug: one WARNING when it starts, one when a beat
works again, DEBUG in between (as the reaper does).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import TimeoutError as StoreTimeoutError

from compute.models import utcnow
from compute.settings import HealthOptions
from compute.store import Store
from compute.store.heartbeats import WorkerHeartbeat
from workers.runtime import Runtime

LOG = logging.getLogger(__name__)

UNREACHABLE = (StoreConnectionError, StoreTimeoutError, OSError)


class HeartbeatThread(threading.Thread):
    """Beats at once, then every ``heartbeat_interval_seconds`` until stopped; ``stop()`` removes the record."""

    def __init__(self, store: Store, name: str, options: HealthOptions) -> None:
        super().__init__(name="compute-actions-heartbeat", daemon=True)
        self.store = store
        self.worker_name = name
        self.options = options
        self.stopped = threading.Event()
        self.outage_since: float | None = None
        self.beats = 0

    def heartbeat(self) -> WorkerHeartbeat:
        return WorkerHeartbeat(name=self.worker_name, pid=os.getpid(), hostname=socket.gethostname(),
                               time=utcnow(), interval_seconds=self.options.heartbeat_interval_seconds,
                               ttl_seconds=self.options.heartbeat_ttl_seconds)

    def run(self) -> None:
        self.beat_once()
        while not self.stopped.wait(self.options.heartbeat_interval_seconds):
            self.beat_once()

    def beat_once(self) -> bool:
        try:
            self.store.record_heartbeat(self.heartbeat())
        except UNREACHABLE as exc:
            if self.outage_since is None:
                self.outage_since = time.monotonic()
                LOG.warning("heartbeat of %s: the store is unreachable (%s: %s); beats resume when it answers",
                            self.worker_name, type(exc).__name__, exc)
            else:
                LOG.debug("heartbeat of %s: the store is still unreachable (%s)", self.worker_name, exc)
            return False
        except Exception:  # a bug in a beat must not end the thread
            LOG.exception("heartbeat of %s failed", self.worker_name)
            return False
        if self.outage_since is not None:
            LOG.warning("heartbeat of %s: the store answers again after %.1f s", self.worker_name,
                        time.monotonic() - self.outage_since)
            self.outage_since = None
        self.beats += 1
        return True

    def stop(self, timeout: float = 2.0) -> None:
        """Stop beating and remove the record (best effort: with the store down it expires by itself)."""
        self.stopped.set()
        if self.is_alive():
            self.join(timeout)
        with contextlib.suppress(Exception):
            self.store.remove_heartbeat(self.worker_name)


def node_name(sender: Any) -> str:
    """The Celery node name of the worker whose consumer sent ``worker_ready`` (``-n``, expanded)."""
    return getattr(sender, "hostname", None) or f"celery@{socket.gethostname()}"


def attach_to_worker(runtime: Runtime) -> None:
    """Beat from this worker process while its consumer runs: start at ``worker_ready`` (where the
    reaper starts), stop and remove the record at ``worker_shutting_down``. Call it once, in
    ``compute-actions worker``, before ``worker_main``."""
    from celery.signals import worker_ready, worker_shutting_down

    running: list[HeartbeatThread] = []

    @worker_ready.connect(weak=False)
    def start_heartbeat(sender: Any = None, **_: object) -> None:
        if running:
            return
        thread = HeartbeatThread(runtime.store, node_name(sender), runtime.settings.health)
        running.append(thread)
        thread.start()

    @worker_shutting_down.connect(weak=False)
    def stop_heartbeat(**_: object) -> None:
        while running:
            running.pop().stop()


@contextlib.contextmanager
def beating(runtime: Runtime, name: str | None = None) -> Iterator[HeartbeatThread]:
    """Beat under ``name`` (default ``dev@<hostname>``) for the duration of the block: the embedded
    worker of ``compute-actions dev``, which sends no ``worker_ready``."""
    thread = HeartbeatThread(runtime.store, name or f"dev@{socket.gethostname()}", runtime.settings.health)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
