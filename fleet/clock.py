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

    def now(self) -> float:
        return time.time() + self._store.fleet_clock_offset()

    def advance(self, seconds: float) -> None:
        self._store.advance_fleet_clock(seconds)
