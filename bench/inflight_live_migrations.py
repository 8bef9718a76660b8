"""1,000 in-flight 30 s live migrations in the production shape: how close to 30 s, at what cost.

Writes a generated fleet (bench/generated_fleet.py: ``--hosts`` identical hosts on one shared
storage, the sample flavors; ``live_migration`` takes ``--copy-seconds``, every other
operation none) to a temporary YAML, and starts the production processes on real Redis with
a private key prefix and queue: `compute-actions api` (gunicorn, 2 workers) and ``--workers``
`compute-actions worker` processes (``--concurrency`` slots each). Puts ``--count`` m1.tiny
servers ACTIVE round-robin on the hosts (claims included), plus one more server that is only
read.

  idle   GET /v2.1/servers/{id} of the read-only server, one client, every ``--get-every``
         seconds, for ``--idle-seconds``
  run    the same GETs while ``--count`` os-migrateLive requests (2.68, host null, block
         migration auto) go out from a thread pool, until every migration has ended

Printed: first 202 -> last completed (the last record's own ``updated_at``) and its ratio to
the ideal (the copy time), the 202s' wall time, the final statuses, deliveries per action
(each run's ``deliveries``: messages that ran it) against the flow's steps, and the GET
p50/p99 idle and during the run with their ratios. Everything is measured in the same run; on
a 2-core box wall-clock numbers drift, the ratios are what to compare. Takes about a minute.

    .venv/bin/python bench/inflight_live_migrations.py [--count 1000] [--hosts 50] [--workers 2]

bench/run.py calls ``run`` (section d); its quick mode is 200 migrations of 10 s on 20 hosts.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import (
    DB,
    Figure,
    cpu_seconds,
    free_port,
    percentile,
    request,
    stop,
    wait_http,
    wait_ready,
)
from generated_fleet import host_names, place_servers, write_fleet

from compute.settings import Settings
from compute.store import Store, iso_to_epoch
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tasks.live_migrate import LiveMigrateFlow

ENDED = {"completed", "error", "failed", "cancelled"}
BODY = json.dumps({"os-migrateLive": {"host": None, "block_migration": "auto"}}).encode()
HEADERS = {"X-Auth-Token": "admin:admin", "Content-Type": "application/json",
           "OpenStack-API-Version": "compute 2.68"}
OPERATIONS = ("pre_live_migration", "live_migration", "post_live_migration_at_destination",
              "rollback_live_migration_at_destination")




class GetSampler(threading.Thread):
    """GET one server every ``every`` seconds (one client) until stopped; latencies in ms."""

    def __init__(self, port: int, server_id: str, every: float) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.every = port, f"/v2.1/servers/{server_id}", every
        self.samples: list[float] = []
        self.at: list[float] = []  # when each sample was sent (epoch)
        self.errors = 0
        self.halt = threading.Event()

    def run(self) -> None:
        headers = {"X-Auth-Token": "admin:admin"}
        while not self.halt.is_set():
            began, sent = time.perf_counter(), time.time()
            status, elapsed, _ = request(self.port, "GET", self.path, headers=headers)
            if status == 200:
                self.samples.append(elapsed * 1000)
                self.at.append(sent)
            else:
                self.errors += 1
            self.halt.wait(max(0.0, self.every - (time.perf_counter() - began)))

    def stop(self) -> list[float]:
        self.halt.set()
        self.join(timeout=30)
        return self.samples




def start_worker(name: str, concurrency: int, env: dict[str, str], log_dir: Path,
                 nice: int = 0) -> tuple[subprocess.Popen, Path]:
    log = log_dir / f"{name}.log"
    cmd = [sys.executable, "-m", "workers.cli", "worker", "-c", str(concurrency), "-n", f"{name}@%h"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)  # noqa: PLW1509 - before any thread
    return proc, log


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--copy-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2, help="compute-actions worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="slots per worker process")
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="run the workers at this niceness (the API keeps the CPU it needs on a shared box)")
    parser.add_argument("--threads", type=int, default=16, help="client threads sending the requests")
    parser.add_argument("--get-every", type=float, default=0.05, help="seconds between GETs")
    parser.add_argument("--idle-seconds", type=float, default=8.0)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--db", type=int, default=DB["inflight"], help="Redis db for the store and the broker")
    return parser


QUICK = ["--count", "200", "--copy-seconds", "10", "--hosts", "20", "--idle-seconds", "4"]


def run(quick: bool = False) -> tuple[list[Figure], list[str]]:
    """The figures of bench/run.py (d); ``quick``: 200 migrations of 10 s."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = measure(parser().parse_args(QUICK if quick else []))
    notes = [f"(d) {line}" for line in out.getvalue().splitlines()]
    figures = [
        Figure("d", f"{result['count']} live migrations: first 202 -> last completed", result["elapsed"],
               "copy time", result["copy_seconds"], "s", "<= 1.1"),
        Figure("d", "GET /servers/{id} p50 during the run", result["run_p50"], "idle p50", result["idle_p50"], "ms"),
        Figure("d", "GET /servers/{id} p99 during the run", result["run_p99"], "idle p99", result["idle_p99"], "ms",
               "<= 2"),
        Figure("d", "deliveries per action (max)", result["deliveries_max"], "steps of the flow", result["steps"],
               "", "<= 1"),
        Figure("d", "deliveries per action (mean)", result["deliveries_mean"], "steps of the flow",
               result["steps"], "", "<= 1"),
    ]
    return figures, notes


def main(argv: list[str] | None = None) -> None:
    measure(parser().parse_args(argv))


def measure(args: argparse.Namespace) -> dict[str, float]:
    began = time.monotonic()

    durations = {name: 0.0 for name in OPERATIONS} | {"live_migration": args.copy_seconds,
                                                      "live_migration_per_gb": 0.0}
    fleet_file = write_fleet(args.hosts, durations)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    queue = f"bench-{prefix}"
    url = f"{args.redis}/{args.db}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), COMPUTE_ACTIONS_REDIS__STORE_URL=url,
               COMPUTE_ACTIONS_REDIS__BROKER_URL=url, COMPUTE_ACTIONS_REDIS__KEY_PREFIX=prefix,
               COMPUTE_ACTIONS_ENGINE__QUEUE=queue, COMPUTE_ACTIONS_FLEET__FLEET_FILE=str(fleet_file),
               COMPUTE_ACTIONS_FLEET__DURATION_SCALE="1.0", COMPUTE_ACTIONS_LOG_LEVEL="WARNING")
    client = redis.Redis.from_url(url, decode_responses=True)
    store = Store(client, prefix=prefix)
    seed_fleet(store, SimulatedFleet(store), fleet_file)
    hosts = host_names(store)
    servers = place_servers(store, args.count, hosts)
    [watched] = place_servers(store, 1, hosts, name="bench-read")

    port = free_port()
    log_dir = fleet_file.parent
    api = subprocess.Popen([sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{port}",
                            "--workers", str(args.api_workers)], env=env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [start_worker(f"inflight{i}-{prefix.strip(':')}", args.concurrency, env, log_dir, args.worker_nice)
               for i in range(args.workers)]
    try:
        wait_http(port, api)
        wait_ready([p for p, _ in workers], [log for _, log in workers],
                   [f"inflight{i}-{prefix.strip(':')}@%h" for i in range(args.workers)], url)

        idle = GetSampler(port, watched, args.get_every)
        idle.start()
        time.sleep(args.idle_seconds)
        idle_ms = idle.stop()

        redis_pid = int(client.info("server")["process_id"])
        tracked = {"api": api.pid, "workers": [p.pid for p, _ in workers], "redis": redis_pid}

        def cpu_now() -> dict[str, float]:
            return {"api": cpu_seconds(api.pid), "workers": sum(cpu_seconds(p) for p in tracked["workers"]),
                    "redis": cpu_seconds(redis_pid), "bench": time.process_time()}

        cpu_before = cpu_now()
        during = GetSampler(port, watched, args.get_every)
        during.start()

        def migrate(server_id: str) -> tuple[int, float, str]:
            status, _, headers = request(port, "POST", f"/v2.1/servers/{server_id}/action", BODY, HEADERS)
            return status, time.time(), headers.get("x-openstack-request-id", "")

        sent = time.time()
        with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
            answers = list(pool.map(migrate, servers))
        accepted = [(at, rid) for status, at, rid in answers if status == 202]
        if len(accepted) != args.count:
            raise SystemExit(f"only {len(accepted)} of {args.count} requests were accepted: "
                             f"{collections.Counter(s for s, _, _ in answers)}")
        sent_all = max(at for at, _ in accepted)
        request_ids = [rid for _, rid in accepted]
        deadline, pending = time.monotonic() + args.timeout, collections.deque(request_ids)
        while pending:  # cheap for the box: one read per finished run, one per poll
            run = store.get_run(pending[0])
            if run is not None and run.finished:
                pending.popleft()
                continue
            if time.monotonic() > deadline:
                raise SystemExit(f"not finished after {args.timeout} s: {len(pending)} runs left")
            time.sleep(0.25)
        run_ms = during.stop()
        cpu_after = cpu_now()
        runs = [store.get_run(rid) for rid in request_ids]
        migrations = [m for m in store.list_migrations() if m.instance_uuid in set(servers)]
        completed = [iso_to_epoch(m.updated_at) for m in migrations if m.status == "completed"]
        copies = SimulatedFleet(store).store.list_fleet_ops()
        ended_at = {m.request_id: iso_to_epoch(m.updated_at) for m in migrations if m.status == "completed"}
        lags = []  # per action: 202 -> copy started, copy due -> completed
        for at, rid in accepted:
            copy = copies.get(f"{rid}:live_migration")
            if copy is not None and rid in ended_at:
                lags.append((copy["started_at"] - at, ended_at[rid] - copy["started_at"] - copy["duration"]))
    finally:
        stop(api, *(p for p, _ in workers))
        store.delete_all()
        for key in client.scan_iter(f"*{queue}*"):
            client.delete(key)

    first_202 = min(at for at, _ in accepted)
    elapsed = max(completed) - first_202
    deliveries = [r.deliveries for r in runs if r is not None]
    steps = len(LiveMigrateFlow().steps(runs[0]))  # type: ignore[arg-type]
    options = Settings().engine
    print(f"{args.count} in-flight live migrations of {args.copy_seconds:g} s on a generated fleet of {args.hosts} "
          f"hosts; {args.workers} worker processes x {args.concurrency} slots (nice {args.worker_nice}); "
          f"gunicorn x{args.api_workers}; "
          f"real Redis db {args.db}, prefix {prefix}")
    print(f"engine: woken when due; progress_updates {options.progress_updates}, progress_interval "
          f"{options.progress_interval_seconds:g} s, backoff {options.poll_interval_seconds:g} s .. "
          f"{options.poll_backoff_max_seconds:g} s")
    print(f"statuses: {dict(collections.Counter(m.status for m in migrations))}")
    print(f"202s sent in {sent_all - sent:.2f} s")
    print(f"first 202 -> last completed: {elapsed:.2f} s; ideal {args.copy_seconds:g} s; "
          f"ratio {elapsed / args.copy_seconds:.3f}")
    print(f"deliveries per action: mean {statistics.mean(deliveries):.2f}, max {max(deliveries)}, "
          f"min {min(deliveries)} (flow of {steps} steps; bound 1 + progress_updates = "
          f"{1 + options.progress_updates}); {sum(deliveries)} in all, "
          f"{sum(deliveries) / (max(completed) - first_202):.0f}/s")
    if lags:
        start_lag, end_lag = sorted(a for a, _ in lags), sorted(b for _, b in lags)
        print(f"per action: 202 -> copy started p50 {percentile(start_lag, 50):.2f} s, max {start_lag[-1]:.2f} s; "
              f"copy due -> completed p50 {percentile(end_lag, 50):.2f} s, max {end_lag[-1]:.2f} s")
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    print("CPU seconds from the first POST to the last completion: "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
          + f" (of {os.cpu_count()} cores x {max(completed) - first_202:.1f} s)")
    print(f"{'GET /servers/{id}':20}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'idle':20}{len(idle_ms):6d}{percentile(idle_ms, 50):10.2f}{percentile(idle_ms, 99):10.2f}")
    print(f"{'during the run':20}{len(run_ms):6d}{percentile(run_ms, 50):10.2f}{percentile(run_ms, 99):10.2f}")
    if lags:
        # The run in two: until the last copy started (202s and first deliveries), then only waiting.
        last_start = max(copy["started_at"] for rid, copy in
                         ((rid, copies.get(f"{rid}:live_migration")) for _, rid in accepted) if copy)
        burst = [ms for ms, at in zip(run_ms, during.at) if at < last_start]
        waiting = [ms for ms, at in zip(run_ms, during.at) if at >= last_start]
        for label, part in (("  until last copy", burst), ("  copies only", waiting)):
            if len(part) >= 2:
                print(f"{label:20}{len(part):6d}{percentile(part, 50):10.2f}{percentile(part, 99):10.2f}"
                      f"   (p99 {percentile(part, 99) / percentile(idle_ms, 99):.2f}x idle)")
    print(f"{'ratio run/idle':20}{'':6}{percentile(run_ms, 50) / percentile(idle_ms, 50):10.2f}"
          f"{percentile(run_ms, 99) / percentile(idle_ms, 99):10.2f}")
    print(f"GET errors: idle {idle.errors}, run {during.errors}; bench took {time.monotonic() - began:.0f} s")
    return {"count": args.count, "elapsed": elapsed, "copy_seconds": args.copy_seconds,
            "idle_p50": percentile(idle_ms, 50), "idle_p99": percentile(idle_ms, 99), "run_p50": percentile(run_ms, 50),
            "run_p99": percentile(run_ms, 99), "deliveries_max": max(deliveries),
            "deliveries_mean": statistics.mean(deliveries), "steps": steps}


if __name__ == "__main__":
    main()
