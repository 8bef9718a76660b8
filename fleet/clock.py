"""Simulated time shared by every process: wall time plus an offset kept in Redis.

Tests move it forward with :meth:`FleetClock.advance` to finish long operations
(or hit timeouts) without waiting, and every worker process sees the same jump.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from compute.store import Store


class FleetClock:
    def __init__(self, store: Store, recent_offset: Callable[[], float | None] | None = None,
                 on_advance: Callable[[], None] | None = None) -> None:
        """``recent_offset``: the offset its owner read a moment ago, if any (the simulator's start
        just before), which :meth:`now` uses instead of reading it again; ``on_advance``: told when
        this clock moves, so that owner forgets it."""
        self._store = store
        self._recent_offset = recent_offset
        self._on_advance = on_advance

    def now(self) -> float:
        recent = self._recent_offset() if self._recent_offset is not None else None
        return time.time() + (self._store.fleet_clock_offset() if recent is None else recent)

    def advance(self, seconds: float) -> None:
        if self._on_advance is not None:
            self._on_advance()
        self._store.advance_fleet_clock(seconds)
