"""(a) How many actions the API accepts per second under gunicorn, and at what latency, against a floor.

Production shape on real Redis (its own db and key prefix): `compute-actions api` (gunicorn,
2 workers, the settings of workers/cli.py) on a generated fleet, and bench/floor_app.py under the
same gunicorn settings doing one HSET + one Celery apply_async per request. No worker consumes
the queue, so what is measured is the accept path alone. wrk (bench/wrk_post.lua) drives each
for ``--seconds`` with ``--connections`` connections, in rounds of os-resetState, os-migrateLive
(2.68, host null: the checks run after the 202) with a floor run before the first round and
after each (two rounds; one with ``--quick``). Each figure is the mean of its runs against the
mean of every floor run, so drift during the run hits both sides; each round's own ratios are
printed too.

Every request goes to a server of its own until the list wraps: resetState cycles over 200
ACTIVE servers (it leaves them ACTIVE), and os-migrateLive gets more fresh servers than it can
take in the time (sized from the resetState rate), because a server that is migrating answers
409, which is not an accepted request. Only 202s count for the rate; p50/p99 are wrk's over
every request.

    .venv/bin/python bench/api_accept.py [--seconds 5] [--connections 16] [--quick]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import (
    DB,
    Figure,
    client,
    delete_matching,
    free_port,
    production_env,
    start_api,
    stop,
    wait_http,
    wait_quiet,
)
from generated_fleet import host_names, place_servers, write_fleet

from compute.store import Store
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet

RESET = json.dumps({"os-resetState": {"state": "active"}})
MIGRATE = json.dumps({"os-migrateLive": {"host": None, "block_migration": "auto"}})
LUA = ROOT / "bench" / "wrk_post.lua"


def wrk(port: int, paths: list[str], body: str, version: str, seconds: float, connections: int,
        threads: int, workdir: Path) -> dict:
    """One wrk run; its JSON summary (statuses, p50_us, p99_us, duration_us) and the 202 rate."""
    paths_file = workdir / f"paths-{uuid.uuid4().hex[:6]}.txt"
    paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    env = dict(os.environ, BENCH_PATHS=str(paths_file), BENCH_BODY=body, BENCH_VERSION=version,
               BENCH_THREADS=str(threads))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                          "-s", str(LUA), f"http://127.0.0.1:{port}"], env=env, capture_output=True,
                         text=True, timeout=seconds + 60, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    result = json.loads(line[len("BENCH "):])
    result["accepted"] = result["statuses"].get("202", 0)
    result["rate"] = result["accepted"] / (result["duration_us"] / 1e6)
    return result


def place_many(store: Store, count: int, hosts: list[str], threads: int = 8) -> list[str]:
    """``count`` ACTIVE servers from ``threads`` threads, each on hosts of its own (no claim races)."""
    share = [hosts[i::threads] for i in range(threads)]
    sizes = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        placed = pool.map(lambda job: place_servers(store, job[0], job[1], name=f"migrate{job[2]}"),
                          [(n, h, i) for i, (n, h) in enumerate(zip(sizes, share))])
        return [server for servers in placed for server in servers]


def run(quick: bool = False, seconds: float | None = None, connections: int = 16) -> tuple[list[Figure], list[str]]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    seconds = seconds or (4.0 if quick else 5.0)
    rounds = 1 if quick else 2
    threads = 2
    db = DB["api_accept"]
    prefix = f"bench-accept-{uuid.uuid4().hex[:8]}:"
    queue = f"bench-{prefix}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-accept-"))
    fleet_file = write_fleet(50, {}, directory=str(workdir))
    redis_client = client(db)
    store = Store(redis_client, prefix=prefix)
    notes: list[str] = []
    procs: list[subprocess.Popen] = []
    try:
        seed_fleet(store, SimulatedFleet(store), fleet_file)
        hosts = host_names(store)
        reset_servers = place_servers(store, 200, hosts, name="reset")
        env = production_env(db, prefix, queue, fleet_file)
        api_port, floor_port = free_port(), free_port()
        api = start_api(env, api_port)
        procs.append(api)
        floor = subprocess.Popen([sys.executable, str(ROOT / "bench" / "floor_app.py"), "--bind",
                                  f"127.0.0.1:{floor_port}", "--workers", "2"], env=env, cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(floor)
        wait_http(api_port, api)
        wait_http(floor_port, floor)
        wait_quiet([api, floor])
        floor_paths = [f"/floor/{uuid.uuid4()}/action" for _ in range(5000)]
        reset_paths = [f"/v2.1/servers/{s}/action" for s in reset_servers]

        def go(port: int, paths: list[str], body: str, version: str, length: float = seconds) -> dict:
            return wrk(port, paths, body, version, length, connections, threads, workdir)

        go(floor_port, floor_paths, MIGRATE, "2.68", 1)  # warm-up: imports, connections, caches
        go(api_port, reset_paths, RESET, "2.1", 1)
        floors = [go(floor_port, floor_paths, MIGRATE, "2.68")]
        resets, migrates = [go(api_port, reset_paths, RESET, "2.1")], []
        need = int(max(resets[0]["rate"], 0.5 * floors[0]["rate"]) * seconds * 1.5) + 200
        migrate_servers = place_many(store, need * rounds, hosts)
        for index in range(rounds):
            if index:
                resets.append(go(api_port, reset_paths, RESET, "2.1"))
            mine = migrate_servers[index * need:(index + 1) * need]
            migrates.append(go(api_port, [f"/v2.1/servers/{s}/action" for s in mine], MIGRATE, "2.68"))
            floors.append(go(floor_port, floor_paths, MIGRATE, "2.68"))
    finally:
        stop(*procs)
        store.delete_all()
        delete_matching(redis_client, f"*{queue}*")
        shutil.rmtree(workdir, ignore_errors=True)

    def mean(runs: list[dict], key: str) -> float:
        return sum(r[key] for r in runs) / len(runs)

    floor_rate, floor_p50, floor_p99 = mean(floors, "rate"), mean(floors, "p50_us") / 1000, mean(floors, "p99_us") / 1000
    figures = []
    for label, runs in (("os-resetState", resets), ("os-migrateLive", migrates)):
        figures += [
            Figure("a", f"{label} accepted/s", mean(runs, "rate"), "floor app 202/s", floor_rate, "/s", ">= 0.7"),
            Figure("a", f"{label} p50", mean(runs, "p50_us") / 1000, "floor app p50", floor_p50, "ms"),
            Figure("a", f"{label} p99", mean(runs, "p99_us") / 1000, "floor app p99", floor_p99, "ms", "<= 2"),
        ]
    for index in range(rounds):
        around = (floors[index]["rate"] + floors[index + 1]["rate"]) / 2
        notes.append(f"(a) round {index + 1}: floor {floors[index]['rate']:.0f} and {floors[index + 1]['rate']:.0f}/s; "
                     f"os-resetState {resets[index]['rate']:.0f}/s ({resets[index]['rate'] / around:.2f}x), "
                     f"os-migrateLive {migrates[index]['rate']:.0f}/s ({migrates[index]['rate'] / around:.2f}x)")
    for label, runs in (("floor", floors), ("os-resetState", resets), ("os-migrateLive", migrates)):
        statuses: dict[str, int] = {}
        for r in runs:
            for status, n in r["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        errors = {k: sum(r["errors"][k] for r in runs) for k in runs[0]["errors"]}
        notes.append(f"(a) {label}: {len(runs)} runs, statuses {statuses}, socket errors {errors}")
    notes.append(f"(a) wrk -t{threads} -c{connections} -d{seconds:g}s per run, floor runs between the others; "
                 f"gunicorn gthread x2 for both; {need} fresh servers per os-migrateLive run, 200 for os-resetState")
    return figures, notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    figures, notes = run(args.quick, args.seconds, args.connections)
    for line in [*notes, *(f.line() for f in figures)]:
        print(line)


if __name__ == "__main__":
    main()
