"""(b) Throughput of fast actions through real workers, against raw reliable Celery no-op tasks.

Real Redis (its own db and key prefix) as store and broker, a generated fleet of 10 hosts, every
simulated operation of zero duration (``duration_scale 0``), ``--workers`` worker processes of one
prefork slot each for both sides. Each phase queues its backlog while the workers do not consume
(Celery's cancel_consumer), then lets them all consume at once (add_consumer), so the figure is
what the workers get through, not how fast this process can send:

  floor              ``--noop`` no-op tasks of bench/noop_tasks.py (the project's Celery settings:
                     late acks, reject on worker lost, prefetch 1, events) on `celery worker`,
                     before the first action and after each: an action's floor is the mean of
                     the two no-op runs around it
  injectNetworkInfo  ``--count`` actions accepted through the service layer (as the API does),
  createBackup       one per ACTIVE server, then `compute-actions worker` processes run them
  os-migrateLive     (2.68 semantics: host null, checks after the accept)

Throughput is (n - 1) / (last finish - first finish): each action's ``finish_time`` as its
worker recorded it, each no-op's own time stamp. Printed per action: the ratio to the no-op
rate (target >= 0.5) and the deliveries each run took (its ``deliveries``).

    .venv/bin/python bench/fast_actions.py [--count 300] [--noop 1000] [--workers 2] [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from celery import Celery

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import (
    DB,
    NOOP,
    REDIS_URL,
    Figure,
    client,
    delete_matching,
    noop_done_key,
    production_env,
    start_celery_worker,
    stop,
    wait_ready,
)
from generated_fleet import host_names, place_servers, write_fleet

from compute.actions.create_backup import create_backup
from compute.actions.inject_network_info import inject_network_info
from compute.actions.live_migrate import LiveMigrationRequest, live_migrate
from compute.context import RequestContext
from compute.models import Instance
from compute.settings import Settings
from compute.store import iso_to_epoch
from fleet.loader import seed_fleet
from workers.celery_app import make_celery
from workers.runtime import Runtime, build_runtime

Accept = Callable[[Runtime, RequestContext, Instance], object]
ACTIONS: dict[str, Accept] = {
    "injectNetworkInfo": lambda rt, ctx, inst: inject_network_info(rt.service, ctx, inst),
    "createBackup": lambda rt, ctx, inst: create_backup(rt.service, ctx, inst, name="bench",
                                                         backup_type="daily", rotation=1),
    "os-migrateLive": lambda rt, ctx, inst: live_migrate(rt.service, ctx, inst,
                                                         LiveMigrationRequest(host=None, block_migration=None)),
}


def admin() -> RequestContext:
    return RequestContext("admin", "admin", ["admin", "member", "reader"])


def rate(finishes: list[float]) -> float:
    """Items per second between the first and the last finish."""
    span = max(finishes) - min(finishes)
    return (len(finishes) - 1) / span if span > 0 else float("inf")


def workers(cmd_of: Callable[[str], list[str]], names: list[str], env: dict[str, str], log_dir: Path,
            cwd: Path = ROOT) -> list:
    procs, logs = [], []
    for name in names:
        logs.append(log_dir / f"{uuid.uuid4().hex[:6]}.log")
        procs.append(start_celery_worker(cmd_of(name), env, logs[-1], cwd))
    try:
        wait_ready(procs, logs, names, env["COMPUTE_ACTIONS_REDIS__BROKER_URL"])
    except BaseException:
        stop(*procs)
        raise
    return procs


def collect(runtime: Runtime, request_ids: list[str], deliveries: list[int]) -> bool:
    """Whether every run has ended, reading each once; the deliveries of those that ended go to ``deliveries``."""
    while len(deliveries) < len(request_ids):
        run_record = runtime.store.get_run(request_ids[len(deliveries)])
        if run_record is None or not run_record.finished:
            return False
        if run_record.status != "done":
            raise SystemExit(f"{run_record.flow} {run_record.request_id} ended {run_record.status}: {run_record.error}")
        deliveries.append(run_record.deliveries)
    return True


def consume(app: Celery, queue: str, nodes: list[str], on: bool) -> None:
    call = app.control.add_consumer if on else app.control.cancel_consumer
    replies = call(queue, destination=nodes, reply=True, timeout=10)
    if len(replies) != len(nodes):
        raise SystemExit(f"{call.__name__} {queue}: {len(replies)} of {len(nodes)} workers answered: {replies}")


@contextlib.contextmanager
def backlog(app: Celery, queue: str, names: list[str]) -> Iterator[None]:
    """The workers ``names`` stop consuming ``queue`` while the body queues a backlog, then all start at once."""
    nodes = [name.replace("%h", socket.gethostname()) for name in names]
    consume(app, queue, nodes, on=False)
    try:
        yield
    finally:
        consume(app, queue, nodes, on=True)


def wait_for(what: str, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def run(quick: bool = False, count: int | None = None, noops: int | None = None,
        worker_count: int = 2, timeout: float = 180.0) -> tuple[list[Figure], list[str]]:
    count = count or (100 if quick else 300)
    noops = noops or (300 if quick else 1000)
    db = DB["fast_actions"]
    token = uuid.uuid4().hex[:8]
    prefix, queue, noop_queue = f"bench-fast-{token}:", f"bench-fast-{token}", f"bench-noop-{token}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-fast-"))
    fleet_file = write_fleet(10, {}, directory=str(workdir))
    url = f"{REDIS_URL}/{db}"
    settings = Settings(redis={"store_url": url, "broker_url": url, "key_prefix": prefix},
                        engine={"queue": queue}, fleet={"fleet_file": str(fleet_file), "duration_scale": 0.0})
    runtime = build_runtime(settings, seed=False)
    redis_client = client(db)
    env = production_env(db, prefix, queue, fleet_file, duration_scale=0.0)
    noop_env = dict(production_env(db, prefix, noop_queue, fleet_file, 0.0),
                    PYTHONPATH=f"{ROOT}:{ROOT / 'bench'}")
    rates: dict[str, float] = {}
    floors: list[float] = []
    deliveries: dict[str, list[int]] = {}
    noop_app = make_celery(settings.model_copy(update={"engine": settings.engine.model_copy(
        update={"queue": noop_queue})}))
    noop_names = [f"noop{i}-{token}@%h" for i in range(worker_count)]
    action_names = [f"fast{i}-{token}@%h" for i in range(worker_count)]
    procs: list = []

    def noop_phase() -> None:
        done = noop_done_key(f"{prefix}{len(floors)}:")
        with backlog(noop_app, noop_queue, noop_names):
            for index in range(noops):
                noop_app.send_task(NOOP, args=[index, done], queue=noop_queue)
        wait_for("the no-op tasks", lambda: redis_client.zcard(done) >= noops, timeout)
        floors.append(rate([score for _, score in redis_client.zrange(done, 0, -1, withscores=True)]))

    try:
        seed_fleet(runtime.store, runtime.fleet, fleet_file)
        hosts = host_names(runtime.store)
        procs += workers(lambda name: [sys.executable, "-m", "celery", "-A", "noop_tasks", "worker", "-Q", noop_queue,
                                       "-c", "1", "-n", name, "--without-gossip", "--without-mingle", "-E",
                                       "--loglevel", "WARNING"], noop_names, noop_env, workdir, ROOT / "bench")
        procs += workers(lambda node: [sys.executable, "-m", "workers.cli", "worker", "-c", "1", "-n", node],
                         action_names, env, workdir)
        noop_phase()
        for name, accept in ACTIONS.items():
            servers = place_servers(runtime.store, count, hosts, name=f"fast-{name}")
            request_ids = []
            with backlog(noop_app, queue, action_names):
                for server_id in servers:
                    ctx = admin()
                    instance = runtime.store.get_instance(server_id)
                    assert instance is not None
                    accept(runtime, ctx, instance)
                    request_ids.append(ctx.request_id)
            ended: list[int] = deliveries.setdefault(name, [])
            wait_for(f"{count} {name} actions", lambda ids=request_ids, into=ended: collect(runtime, ids, into),
                     timeout)
            ends = []
            for rid in request_ids:
                action = runtime.store.get_action(rid)
                assert action is not None and action.finish_time is not None
                ends.append(iso_to_epoch(action.finish_time))
            rates[name] = rate(ends)
            noop_phase()
    finally:
        stop(*procs)
        runtime.store.delete_all()
        delete_matching(redis_client, f"*{token}*")
        runtime.celery.close()
        noop_app.close()
        shutil.rmtree(workdir, ignore_errors=True)

    figures = [Figure("b", f"{name} through {worker_count} workers", rates[name], "Celery no-op tasks",
                      (floors[index] + floors[index + 1]) / 2, "/s", ">= 0.5") for index, name in enumerate(ACTIONS)]
    notes = [(f"(b) {worker_count} worker processes x 1 prefork slot each; {count} actions per kind, {noops} "
              f"no-ops before and after each; each backlog queued while the workers do not consume; duration_scale 0")]
    notes += [f"(b) {name}: deliveries per action mean {statistics.mean(d):.2f}, max {max(d)}"
              for name, d in deliveries.items()]
    return figures, notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int)
    parser.add_argument("--noop", type=int)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    figures, notes = run(args.quick, args.count, args.noop, args.workers)
    for line in [*notes, *(f.line() for f in figures)]:
        print(line)


if __name__ == "__main__":
    main()
