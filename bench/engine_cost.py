"""The engine's own cost per action, counted rather than timed: Redis round trips and Python CPU.

The real FlowRunner and flows run in this process over a store on real Redis (db 9, a private
key prefix; ``--fake`` for fakeredis), the sample fleet (config/fleet.yaml) at duration scale
0, so every simulated operation is done at its first poll and an action is the engine's work
only (``--scale 1``: the operations take their time, slept, and an action waits over several
deliveries). A round trip is one request the client sends (a command, or a pipeline / MULTI sent
whole), counted at ``redis.connection.AbstractConnection.send_packed_command``. CPU is this
process's ``time.process_time`` (the client's and the engine's Python, not the Redis server's),
so neither number depends on how loaded the machine is. Wall times are shown beside them for
reference only: the action's own record (``start_time`` to ``finish_time``, the time the
server records) and one round trip (PING) as the floor.

  accept    the compute/actions/ call the API makes (guards, CAS, action and run records)
  engine    every delivery of the action's flow until it ends

    .venv/bin/python bench/engine_cost.py [--runs 20] [--fake] [--scale 0]
    .venv/bin/python bench/engine_cost.py --by-step live     # where one action's round trips go
"""
from __future__ import annotations

import argparse
import collections
import heapq
import itertools
import statistics
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis
import redis.connection

from compute.actions import (
    confirm_resize,
    create_backup,
    create_server,
    delete_server,
    inject_network_info,
    live_migrate,
    migrate,
    reset_state,
    revert_resize,
    start,
    stop,
)
from compute.context import RequestContext
from compute.models import Instance
from compute.service import ComputeService
from compute.settings import CONFIG_DIR, Settings
from compute.store import Store, iso_to_epoch
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tasks.flow import FlowRunner
from tasks.registry import all_flows

REDIS_URL = "redis://127.0.0.1:6379/9"
IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"  # the cirros image of config/fleet.yaml


# ---- counting ------------------------------------------------------------------------------
@dataclass
class RoundTrips:
    """Requests sent to Redis while ``counting``; with ``where``, by innermost engine -> store frame."""

    count: int = 0
    where: collections.Counter[tuple[str, str]] | None = None

    def sent(self) -> None:
        self.count += 1
        if self.where is not None:
            self.where[blame(traceback.extract_stack(limit=60))] += 1


def blame(stack: traceback.StackSummary) -> tuple[str, str]:
    """(innermost frame of tasks/ or compute/ outside the store, innermost frame of the store or fleet)."""
    def name(frame: traceback.FrameSummary) -> str:
        return f"{Path(frame.filename).stem}:{frame.name}"

    frames = list(reversed(stack))
    caller = next((name(f) for f in frames if ("/tasks/" in f.filename or "/compute/" in f.filename)
                   and "/compute/store/" not in f.filename), "?")
    callee = next((name(f) for f in frames if "/compute/store/" in f.filename or "/fleet/" in f.filename), "?")
    return caller, callee


@contextmanager
def counting(trips: RoundTrips) -> Iterator[RoundTrips]:
    """Count what the connections send meanwhile (a new connection's handshake is the pool's: not counted)."""
    connection = redis.connection.AbstractConnection
    original, handshake = connection.send_packed_command, connection.on_connect_check_health
    connecting = [False]

    def send(self: redis.connection.AbstractConnection, command: object, check_health: bool = True) -> None:
        if not connecting[0]:
            trips.sent()
        return original(self, command, check_health)

    def on_connect(self: redis.connection.AbstractConnection, *args: object, **kwargs: object) -> None:
        connecting[0] = True
        try:
            return handshake(self, *args, **kwargs)
        finally:
            connecting[0] = False

    connection.send_packed_command = send  # type: ignore[method-assign]
    connection.on_connect_check_health = on_connect  # type: ignore[method-assign]
    try:
        yield trips
    finally:
        connection.send_packed_command = original  # type: ignore[method-assign]
        connection.on_connect_check_health = handshake  # type: ignore[method-assign]


# ---- the engine in this process --------------------------------------------------------------
@dataclass
class LocalQueue:
    """compute.queue.Enqueuer in this process: messages in due order; a wait's due time is slept
    (at scale 0 only a lock's backoff waits). Touches no Redis, so it adds no round trip."""

    pending: list[tuple[float, int, str, int]] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0, *,
                action: str = "", server_id: str = "") -> None:
        heapq.heappush(self.pending, (time.monotonic() + countdown, next(self.counter), request_id, wake))

    def pop(self) -> tuple[str, int]:
        due, _, request_id, wake = heapq.heappop(self.pending)
        time.sleep(max(0.0, min(2.0, due - time.monotonic())))
        return request_id, wake


@dataclass
class Cost:
    """One action: what its accept and its deliveries cost, and the time its record shows."""

    accept_trips: int
    engine_trips: int
    deliveries: int
    cpu_ms: float
    server_ms: float

    @property
    def trips(self) -> int:
        return self.accept_trips + self.engine_trips


class Bench:
    def __init__(self, store: Store, scale: float = 0.0) -> None:
        self.store = store
        self.settings = Settings(fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml"), "duration_scale": scale})
        self.fleet = SimulatedFleet(store, duration_scale=scale)
        seed_fleet(store, self.fleet, self.settings.fleet.fleet_file)
        self.queue = LocalQueue()
        self.runner = FlowRunner(store, self.fleet, self.settings, self.queue, all_flows())
        self.service = ComputeService(store, self.queue, self.settings)
        self.created: list[str] = []  # servers the measured creates made, deleted after (the quota is 10)

    def drain(self) -> int:
        delivered = 0
        while self.queue.pending:
            self.runner.run(*self.queue.pop())
            delivered += 1
        return delivered

    def measure(self, act: Callable[[RequestContext], object], trips: RoundTrips | None = None,
                accept_trips: RoundTrips | None = None) -> Cost:
        """Run one action to its end; ``trips`` and ``accept_trips`` (when given) also count where its
        engine's and its accept's round trips go."""
        ctx = RequestContext("admin", "admin", ["admin", "member", "reader"])
        accept, engine = accept_trips or RoundTrips(), trips or RoundTrips()
        cpu = time.process_time()
        with counting(accept):
            act(ctx)
        with counting(engine):
            deliveries = self.drain()
        cpu_ms = (time.process_time() - cpu) * 1000
        action = self.store.get_action(ctx.request_id)
        if action is None:
            raise SystemExit(f"no action recorded for {ctx.request_id}")
        run = self.store.get_run(ctx.request_id)
        if run is not None and run.status != "done":
            raise SystemExit(f"{run.flow} ended {run.status}: {run.error}")
        finish = action.finish_time or action.start_time
        server_ms = (iso_to_epoch(finish) - iso_to_epoch(action.start_time)) * 1000
        return Cost(accept.count, engine.count, deliveries, cpu_ms, server_ms)

    # ---- the actions ---------------------------------------------------------------------------
    def server(self, inst_id: str) -> Instance:
        inst = self.store.get_instance(inst_id)
        assert inst is not None
        return inst

    def boot(self) -> Instance:
        ctx = RequestContext("admin", "admin", ["admin", "member", "reader"])
        inst = create_server.create_server(self.service, ctx, name="bench", flavor_id="2", image_id=IMAGE_ID)
        self.drain()
        return self.server(inst.id)

    def actions(self, inst_id: str) -> dict[str, list[Callable[[RequestContext], object]]]:
        """Each measured action, with the actions it needs before it (run, not measured) in the list."""
        srv, svc = self.server, self.service
        live = live_migrate.LiveMigrationRequest(host=None, block_migration=None)
        return {
            "resetState": [lambda c: reset_state.reset_state(svc, c, srv(inst_id), "active")],
            "injectNetworkInfo": [lambda c: inject_network_info.inject_network_info(svc, c, srv(inst_id))],
            "stop": [lambda c: stop.stop(svc, c, srv(inst_id))],
            "start": [lambda c: stop.stop(svc, c, srv(inst_id)), lambda c: start.start(svc, c, srv(inst_id))],
            "createBackup": [lambda c: create_backup.create_backup(
                svc, c, srv(inst_id), name="b", backup_type="daily", rotation=1)],
            "create": [lambda c: self.created.append(
                create_server.create_server(svc, c, name="b", flavor_id="2", image_id=IMAGE_ID).id)],
            "live-migration": [lambda c: live_migrate.live_migrate(svc, c, srv(inst_id), live)],
            "migrate": [lambda c: migrate.migrate(svc, c, srv(inst_id))],
            "confirmResize": [lambda c: migrate.migrate(svc, c, srv(inst_id)),
                              lambda c: confirm_resize.confirm_resize(svc, c, srv(inst_id))],
            "revertResize": [lambda c: migrate.migrate(svc, c, srv(inst_id)),
                             lambda c: revert_resize.revert_resize(svc, c, srv(inst_id))],
        }

    def run_one(self, steps: list[Callable[[RequestContext], object]], trips: RoundTrips | None = None,
                accept_trips: RoundTrips | None = None) -> Cost:
        *before, measured = steps
        for act in before:
            self.measure(act)
        return self.measure(measured, trips, accept_trips)

    def settle(self, inst_id: str) -> None:
        """Back to ACTIVE (unmeasured) after a measured cold migration (VERIFY_RESIZE) or stop."""
        vm_state = self.server(inst_id).vm_state
        if vm_state == "resized":
            self.measure(lambda c: confirm_resize.confirm_resize(self.service, c, self.server(inst_id)))
        elif vm_state == "stopped":
            self.measure(lambda c: start.start(self.service, c, self.server(inst_id)))
        while self.created:
            extra = self.server(self.created.pop())
            self.measure(lambda c: delete_server.delete_server(self.service, c, extra))  # noqa: B023


def round_trip_floor(client: redis.Redis, samples: int = 200) -> tuple[float, float]:
    """One PING: median wall ms and CPU ms (the cheapest thing an action can cost)."""
    walls, cpus = [], []
    for _ in range(samples):
        wall, cpu = time.perf_counter(), time.process_time()
        client.ping()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.mean(cpus)


def open_store(fake: bool) -> tuple[Store, redis.Redis]:
    if fake:
        import fakeredis

        client = fakeredis.FakeRedis(decode_responses=True)
    else:
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    return Store(client, prefix=f"engine-cost-{uuid.uuid4().hex[:8]}:"), client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="samples per action (after one warm-up)")
    parser.add_argument("--fake", action="store_true", help="fakeredis instead of the real Redis db 9")
    parser.add_argument("--by-step", metavar="ACTION", help="where one action's accept and engine round trips go")
    parser.add_argument("--only", nargs="*", help="measure only these actions")
    parser.add_argument("--scale", type=float, default=0.0,
                        help="[fleet] duration_scale: above 0 the operations take (real) time and an action "
                             "waits for them over several deliveries")
    args = parser.parse_args()

    store, client = open_store(args.fake)
    try:
        bench = Bench(store, args.scale)
        inst = bench.boot()
        actions = bench.actions(inst.id)
        if args.by_step:
            steps = actions[args.by_step]
            bench.run_one(steps)  # warm-up: the first run of a flow imports and builds more
            bench.settle(inst.id)
            trips, accept_trips = RoundTrips(where=collections.Counter()), RoundTrips(where=collections.Counter())
            cost = bench.run_one(steps, trips, accept_trips)
            print(f"{args.by_step}: accept {cost.accept_trips}, engine {cost.engine_trips} round trips "
                  f"in {cost.deliveries} deliveries")
            for part, counted in (("accept", accept_trips), ("engine", trips)):
                print(f"{part}:")
                for (caller, callee), n in counted.where.most_common(60):  # type: ignore[union-attr]
                    print(f"{n:5d}  {caller:50s} {callee}")
            return
        floor_wall, floor_cpu = round_trip_floor(client)
        names = args.only or list(actions)
        results: dict[str, list[Cost]] = {}
        for name in names:
            bench.run_one(actions[name])
            bench.settle(inst.id)
            results[name] = []
            for _ in range(args.runs):
                results[name].append(bench.run_one(actions[name]))
                bench.settle(inst.id)
        reset = results.get("resetState")
        reset_cpu = statistics.median(c.cpu_ms for c in reset) if reset else None
        print(f"one round trip (PING): {floor_wall:.3f} ms wall, {floor_cpu:.3f} ms CPU; "
              f"{'fakeredis' if args.fake else REDIS_URL}, {args.runs} runs, duration scale {args.scale:g}")
        print("| action | round trips (accept + engine) | deliveries | CPU ms (median, min) | CPU / resetState "
              "| server-recorded ms (wall, noisy) |")
        print("|---|---|---|---|---|---|")
        for name, costs in results.items():
            trips_med = statistics.median(c.trips for c in costs)
            accept = statistics.median(c.accept_trips for c in costs)
            engine = statistics.median(c.engine_trips for c in costs)
            spread = f" (max {max(c.trips for c in costs)})" if max(c.trips for c in costs) != trips_med else ""
            cpu = statistics.median(c.cpu_ms for c in costs)
            ratio = f"{cpu / reset_cpu:.1f}" if reset_cpu else "-"
            server = statistics.median(c.server_ms for c in costs)
            print(f"| {name} | {trips_med:g} = {accept:g} + {engine:g}{spread} | "
                  f"{statistics.median(c.deliveries for c in costs):g} | {cpu:.2f}, {min(c.cpu_ms for c in costs):.2f} "
                  f"| {ratio} | {server:.1f} |")
    finally:
        store.delete_all()


if __name__ == "__main__":
    main()
