"""Simulated time shared by every process: wall time plus an offset kept in Redis.

Tests move it forward with :meth:`FleetClock.advance` to finish long operations
(or hit timeouts) without waiting, and every worker process sees the same jump.
"""
from __future__ import annotations

import time

from compute.store import Store


class FleetClock:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._key = store.k("fleet", "clock_offset")

    def now(self) -> float:
        return time.time() + float(self._store.r.get(self._key) or 0.0)

    def advance(self, seconds: float) -> None:
        self._store.r.incrbyfloat(self._key, seconds)
