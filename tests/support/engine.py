"""The in-memory engine: the real FlowRunner and flows over fakeredis, with a queue the test delivers.

``build_engine`` is the one place it is wired; the unit tier's ``engine`` fixture and the API
tier's ``engine_client`` both use it.
"""
from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from compute.actions.create_server import create_server
from compute.context import RequestContext
from compute.models import Instance
from compute.service import ComputeService
from compute.settings import Settings
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tasks.flow import FlowRunner
from tasks.registry import all_flows
from tests.support.contexts import IMAGE_ID, demo_ctx
from tests.support.crash import SimulatedCrash
from workers.reaper import Reaper


@dataclass
class InlineQueue:
    """compute.queue.Enqueuer whose messages a test delivers, moving the fleet clock to their due time."""

    fleet: SimulatedFleet
    pending: list[tuple[float, int, str, int]] = field(default_factory=list)
    counter: itertools.count = field(default_factory=itertools.count)

    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0, *,
                action: str = "", server_id: str = "") -> None:
        heapq.heappush(self.pending, (self.fleet.clock.now() + countdown, next(self.counter), request_id, wake))

    def pop(self) -> tuple[str, int]:
        due, _, request_id, wake = heapq.heappop(self.pending)
        now = self.fleet.clock.now()
        if due > now:
            self.fleet.clock.advance(due - now)
        return request_id, wake


@dataclass
class Engine:
    store: Store
    fleet: SimulatedFleet
    settings: Settings
    queue: InlineQueue
    runner: FlowRunner
    service: ComputeService
    reaper: Reaper

    def deliver_one(self) -> str | None:
        """Run the next due message, if there is one; the runner's outcome, or None on an empty queue."""
        if not self.queue.pending:
            return None
        return self.runner.run(*self.queue.pop())

    def drain(self, limit: int = 500) -> list[str]:
        outcomes = []
        for _ in range(limit):
            if not self.queue.pending:
                return outcomes
            outcomes.append(self.runner.run(*self.queue.pop()))
        raise AssertionError("the queue did not drain")

    def crash_until_abandoned(self, request_id: str) -> None:
        """Every delivery dies inside a step; the reaper rescues it until it gives up, then it ends."""
        later = time.time()
        for _ in range(self.settings.engine.max_reaps + 1):
            with pytest.raises(SimulatedCrash):
                self.drain()
            later += 3600
            assert self.reaper.sweep(now=later) == [request_id]
        self.drain()

    def boot(self, name: str = "vm", ctx: RequestContext | None = None, **kwargs: object) -> Instance:
        inst = create_server(self.service, ctx or demo_ctx(), name=name, flavor_id="2", image_id=IMAGE_ID,
                                          **kwargs)  # type: ignore[arg-type]
        self.drain()
        return self.store.get_instance(inst.id)  # type: ignore[return-value]


def build_engine(store: Store, fleet: SimulatedFleet, settings: Settings) -> Engine:
    """The in-memory engine over ``store`` and ``fleet``: service, runner and reaper share one InlineQueue."""
    queue = InlineQueue(fleet)
    runner = FlowRunner(store, fleet, settings, queue, all_flows())
    return Engine(store, fleet, settings, queue, runner, ComputeService(store, queue, settings),
                  Reaper(store, queue, settings))


def deliver_until(engine: Engine, done: Callable[[], Any], limit: int = 200) -> None:
    """Deliver queued messages one at a time until ``done()`` is truthy (checked before each delivery)."""
    for delivered in range(limit):
        if done():
            return
        if not engine.queue.pending:
            raise AssertionError(f"condition not reached: the queue drained after {delivered} deliveries")
        engine.runner.run(*engine.queue.pop())
    raise AssertionError(f"condition not reached after {limit} deliveries")
