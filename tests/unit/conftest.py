"""An in-memory engine: the real FlowRunner and flows over fakeredis, with a queue the test drains."""
from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field

import pytest

from compute.context import RequestContext
from compute.models import Instance
from compute.service import ComputeService
from compute.settings import Settings
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tasks.flow import FlowRunner
from tasks.registry import all_flows
from workers.reaper import Reaper

ADMIN = RequestContext("admin", "admin", ["admin", "member", "reader"])
IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"


def demo_ctx() -> RequestContext:
    return RequestContext("demo", "demo", ["member", "reader"])


def admin_ctx() -> RequestContext:
    return RequestContext("admin", "admin", ["admin", "member", "reader"])


class SimulatedCrash(BaseException):
    """Escapes the runner's error handling, like a process dying mid-step."""


@dataclass
class InlineQueue:
    """compute.queue.Enqueuer whose messages a test delivers, moving the fleet clock to their due time."""

    fleet: SimulatedFleet
    pending: list[tuple[float, int, str, int]] = field(default_factory=list)
    counter: itertools.count = field(default_factory=itertools.count)

    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0) -> None:
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
        inst = self.service.create_server(ctx or demo_ctx(), name=name, flavor_id="2", image_id=IMAGE_ID,
                                          **kwargs)  # type: ignore[arg-type]
        self.drain()
        return self.store.get_instance(inst.id)  # type: ignore[return-value]


@pytest.fixture
def engine(store: Store, fleet: SimulatedFleet, settings: Settings) -> Engine:
    queue = InlineQueue(fleet)
    runner = FlowRunner(store, fleet, settings, queue, all_flows())
    return Engine(store, fleet, settings, queue, runner, ComputeService(store, queue, settings),
                  Reaper(store, queue, settings))
