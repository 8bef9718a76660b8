"""Time from the first 202 to the last ``completed`` for N concurrent live migrations, against a floor.

Starts `compute-actions api` (gunicorn) and two `compute-actions worker` processes (one slot
each unless --concurrency says otherwise) on real Redis, with a private key prefix and queue, on
a generated fleet (bench/generated_fleet.py: ``--hosts`` identical hosts written to a temporary
fleet YAML, the sample fleet's flavors and durations, duration_scale 1). Puts N m1.tiny servers
ACTIVE round-robin on the hosts (claims included), then sends N os-migrateLive requests (2.68,
host null, block_migration auto) from a thread pool and watches the migration records until
every one has ended.

It does this twice in the same run, on fresh servers each time:
  floor    every simulated operation takes no time (no copy to wait for: engine overhead only)
  sample   the sample fleet's durations (live_migration_per_gb: 0.05 s per GiB copied)

Printed per phase: first 202 -> last completed (the last record's own updated_at), the 202s'
wall time, the most migrations copying at the same moment, and the final statuses; then the
ratio sample/floor. Wall-clock numbers on a 2-core noisy box drift run to run; the ratio and the
peak concurrency are the numbers to compare.

    .venv/bin/python bench/live_migration_concurrency.py [--count 100] [--hosts 10] [--workers 2] [--concurrency 1]
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import free_port, request, stop, wait_http, wait_ready  # noqa: E402
from generated_fleet import host_names, place_servers, remove_servers, write_fleet  # noqa: E402

from compute.settings import CONFIG_DIR, Settings  # noqa: E402
from compute.store import Store, iso_to_epoch  # noqa: E402
from fleet.loader import read_fleet_file, seed_fleet  # noqa: E402
from fleet.simulator import SimulatedFleet  # noqa: E402

ENDED = {"completed", "error", "failed", "cancelled"}
BODY = json.dumps({"os-migrateLive": {"host": None, "block_migration": "auto"}}).encode()
HEADERS = {"X-Auth-Token": "admin:admin", "Content-Type": "application/json",
           "OpenStack-API-Version": "compute 2.68"}


def start_worker(name: str, concurrency: int, env: dict[str, str], log_dir: Path) -> tuple[subprocess.Popen, Path]:
    log = log_dir / f"{name}.log"
    cmd = [sys.executable, "-m", "workers.cli", "worker", "-c", str(concurrency), "-n", f"{name}@%h",
           "--without-gossip", "--without-mingle"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def run_phase(store: Store, port: int, count: int, threads: int, timeout: float) -> dict[str, object]:
    servers = place_servers(store, count, host_names(store))
    before = {m.id for m in store.list_migrations()}

    def migrate(server_id: str) -> tuple[int, float]:
        status, _, _ = request(port, "POST", f"/v2.1/servers/{server_id}/action", BODY, HEADERS)
        return status, time.time()

    sent = time.time()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(migrate, servers))
    accepted = [at for status, at in answers if status == 202]
    if len(accepted) != count:
        raise SystemExit(f"only {len(accepted)} of {count} requests were accepted: "
                         f"{collections.Counter(s for s, _ in answers)}")
    peak_copying, deadline = 0, time.monotonic() + timeout
    while True:
        mine = [m for m in store.list_migrations() if m.id not in before]
        peak_copying = max(peak_copying, sum(1 for m in mine if m.status == "running"))
        if len(mine) == count and all(m.status in ENDED for m in mine):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"not finished after {timeout} s: {collections.Counter(m.status for m in mine)}")
        time.sleep(0.05)
    first_202 = min(accepted)
    last_completed = max(iso_to_epoch(m.updated_at) for m in mine if m.status == "completed")
    remove_servers(store, servers)
    return {"elapsed": last_completed - first_202, "sending": max(accepted) - sent, "peak": peak_copying,
            "statuses": dict(collections.Counter(m.status for m in mine))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=10, help="hosts of the generated fleet")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="slots per worker process")
    parser.add_argument("--threads", type=int, default=16, help="client threads sending the requests")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()

    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    queue = f"bench-{prefix}"
    sample_durations = {k: float(v) for k, v in
                        (read_fleet_file(CONFIG_DIR / "fleet.yaml").get("durations") or {}).items()}
    fleet_file = write_fleet(args.hosts, sample_durations)
    env = dict(os.environ, PYTHONPATH=str(ROOT), COMPUTE_ACTIONS_REDIS__STORE_URL=f"{args.redis}/1",
               COMPUTE_ACTIONS_REDIS__BROKER_URL=f"{args.redis}/0", COMPUTE_ACTIONS_REDIS__KEY_PREFIX=prefix,
               COMPUTE_ACTIONS_ENGINE__QUEUE=queue, COMPUTE_ACTIONS_FLEET__FLEET_FILE=str(fleet_file),
               COMPUTE_ACTIONS_FLEET__DURATION_SCALE="1.0", COMPUTE_ACTIONS_LOG_LEVEL="WARNING")
    broker = redis.Redis.from_url(f"{args.redis}/0", decode_responses=True)
    store = Store(redis.Redis.from_url(f"{args.redis}/1", decode_responses=True), prefix=prefix)
    fleet = SimulatedFleet(store)
    seed_fleet(store, fleet, fleet_file)

    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-lm-"))
    api = subprocess.Popen([sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{port}",
                            "--workers", "2"], env=env, cwd=ROOT)
    workers = [start_worker(f"bench{i}-{prefix.strip(':')}", args.concurrency, env, log_dir)
               for i in range(args.workers)]
    results = {}
    try:
        wait_http(port, api)
        wait_ready([p for p, _ in workers], [log for _, log in workers],
                   [f"bench{i}-{prefix.strip(':')}@%h" for i in range(args.workers)], env["COMPUTE_ACTIONS_REDIS__BROKER_URL"])
        fleet.set_durations({name: 0.0 for name in sample_durations})
        results["floor"] = run_phase(store, port, args.count, args.threads, args.timeout)
        fleet.set_durations(sample_durations)
        results["sample"] = run_phase(store, port, args.count, args.threads, args.timeout)
    finally:
        stop(api, *(p for p, _ in workers))
        store.delete_all()
        for key in broker.scan_iter(f"*{queue}*"):
            broker.delete(key)

    engine = Settings().engine
    print(f"{args.count} concurrent live migrations; {args.workers} worker processes x {args.concurrency} slot(s); "
          f"gunicorn x2; real Redis; generated fleet of {args.hosts} hosts, sample durations (woken when due, "
          f"progress_updates {engine.progress_updates})")
    print(f"{'':8}{'first 202 -> last completed':>30}{'202s sent in':>15}{'peak copying':>15}  statuses")
    for name, r in results.items():
        print(f"{name:8}{r['elapsed']:29.2f}s{r['sending']:14.2f}s{r['peak']:15d}  {r['statuses']}")
    print(f"ratio sample/floor: {results['sample']['elapsed'] / results['floor']['elapsed']:.2f}")


if __name__ == "__main__":
    main()
