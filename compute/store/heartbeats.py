"""Worker heartbeats: each worker process writes its record with a TTL, so a stopped one disappears.

A record lives as long as its TTL after the last beat; a worker is alive while its record
exists. Redis decides the expiry, so no two machines' clocks are compared. The ``workers``
index only lists names; each beat drops the names whose records have expired.

``probe(timeout)`` is the same store on a client of its own with short timeouts and no
retries, for health checks that must answer within a second when Redis is unreachable.
"""
from __future__ import annotations

from typing import Any

import redis
from pydantic import BaseModel

from compute.store.base import StoreBase


class WorkerHeartbeat(BaseModel):
    """One beat of one worker process: ``name`` is its Celery node name (``worker1@host``)."""

    name: str
    pid: int
    hostname: str
    time: str  # ISO 8601, UTC, of the beat (the worker's clock; freshness is the record's TTL)
    interval_seconds: float
    ttl_seconds: float


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class HeartbeatRecords(StoreBase):
    def record_heartbeat(self, beat: WorkerHeartbeat) -> None:
        """Write ``beat`` with its TTL, index its name, and drop the names whose records expired.

        Every worker simulates the whole fleet, so its beat is also the report of the fleet's
        nova-compute services (Nova's ``report_state``): one key for every host, not a write per host.
        """
        index = self._keys.worker_index()
        others = sorted(set(self._client.smembers(index)) - {beat.name})
        records = self._client.mget([self._keys.worker(n) for n in others]) if others else []
        stale = [name for name, raw in zip(others, records, strict=True) if raw is None]
        pipe = self._multi()
        pipe.set(self._keys.worker(beat.name), beat.model_dump_json(), px=_ms(beat.ttl_seconds))
        pipe.sadd(index, beat.name)
        pipe.set(self._keys.fleet_reported_at(), beat.time)
        if stale:
            pipe.srem(index, *stale)
        pipe.execute()

    def remove_heartbeat(self, name: str) -> None:
        """A worker shutting down cleanly: its record goes at once instead of at its TTL."""
        pipe = self._multi()
        pipe.delete(self._keys.worker(name))
        pipe.srem(self._keys.worker_index(), name)
        pipe.execute()

    def get_heartbeat(self, name: str) -> WorkerHeartbeat | None:
        return self._load(WorkerHeartbeat, self._keys.worker(name))

    def live_workers(self) -> list[WorkerHeartbeat]:
        """The workers whose last beat has not expired, by name."""
        names = sorted(self._client.smembers(self._keys.worker_index()))
        return sorted(self._load_many(WorkerHeartbeat, [self._keys.worker(n) for n in names]), key=lambda b: b.name)

    def ping(self) -> bool:
        return bool(self._client.ping())

    def probe(self, timeout: float) -> HeartbeatRecords:
        """This store on a client that gives up after ``timeout`` seconds, without retrying (cached)."""
        cached: dict[float, HeartbeatRecords] = self.__dict__.setdefault("_probes", {})
        if timeout not in cached:
            cached[timeout] = type(self)(_short_timeout_client(self._client, timeout), prefix=self.prefix)
        return cached[timeout]


def _short_timeout_client(client: Any, timeout: float) -> Any:
    """A sibling of ``client`` (same server and database) with short socket timeouts and no retries.

    An in-process fake (fakeredis: ``compute-actions dev``, the tests) cannot hang, so it is reused.
    """
    pool = getattr(client, "connection_pool", None)
    connection_class = getattr(pool, "connection_class", None)
    if pool is None or not issubclass(connection_class or object, redis.connection.AbstractConnection) \
            or type(client).__module__.startswith("fakeredis"):
        return client
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options = dict(pool.connection_kwargs)
    options.update(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=connection_class, max_connections=4,
                                                            **options))
