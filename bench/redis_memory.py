"""(g) Redis memory per server and per in-flight action, against the least each could take.

On real Redis (this bench's db and key prefix, store and broker in the same db, no worker, so
accepted actions stay in flight), the sum of ``MEMORY USAGE key SAMPLES 0`` over every key of the
prefix and the queue, before and after:

  server              ``--count`` ACTIVE servers placed with their claims (bench/generated_fleet.py)
  floor: record       the same servers' JSON records, each alone in a string key
  in-flight action    ``--count`` os-migrateLive accepted through the service layer: the action,
                      its run, the migration record, their indexes and the queued message
  floor: HSET + task  what bench/floor_app.py leaves per request: one hash field and one Celery
                      message of the project's settings

INFO memory's used_memory delta is printed beside it; it includes whatever else the shared Redis
did meanwhile, so the per-key sums are the figures.

    .venv/bin/python bench/redis_memory.py [--count 1000] [--quick]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import DB, NOOP, REDIS_URL, Figure, client, delete_matching
from generated_fleet import host_names, place_servers, write_fleet

from compute.actions.live_migrate import LiveMigrationRequest, live_migrate
from compute.context import RequestContext
from compute.settings import Settings
from fleet.loader import seed_fleet
from workers.runtime import build_runtime


def usage(redis_client, patterns: list[str]) -> int:
    """Bytes of every key matching ``patterns``, each counted once (MEMORY USAGE, SAMPLES 0)."""
    keys = sorted({k for p in patterns for k in redis_client.scan_iter(match=p, count=1000)})
    total = 0
    for start in range(0, len(keys), 500):
        pipe = redis_client.pipeline(transaction=False)
        for key in keys[start:start + 500]:
            pipe.memory_usage(key, samples=0)
        total += sum(n or 0 for n in pipe.execute())
    return total


def run(quick: bool = False, count: int | None = None) -> tuple[list[Figure], list[str]]:
    count = count or (300 if quick else 1000)
    db = DB["memory"]
    token = uuid.uuid4().hex[:8]
    prefix, queue = f"bench-mem-{token}:", f"bench-mem-{token}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    url = f"{REDIS_URL}/{db}"
    settings = Settings(redis={"store_url": url, "broker_url": url, "key_prefix": prefix}, engine={"queue": queue},
                        fleet={"fleet_file": str(write_fleet(10, {}, directory=str(workdir))), "duration_scale": 0.0})
    runtime = build_runtime(settings, seed=False)
    redis_client = client(db)
    mine = [f"{prefix}*", f"*{queue}*"]
    floor_prefix = f"bench-memfloor-{token}:"
    try:
        seed_fleet(runtime.store, runtime.fleet, settings.fleet.fleet_file)

        def used() -> int:
            return int(redis_client.info("memory")["used_memory"])

        base, base_info = usage(redis_client, mine), used()
        servers = place_servers(runtime.store, count, host_names(runtime.store), name="mem")
        with_servers, with_servers_info = usage(redis_client, mine), used()

        # The floor: each server's record alone, as JSON, under a key of the bench's own.
        records = [found.model_dump_json() for found in map(runtime.store.get_instance, servers) if found]
        pipe = redis_client.pipeline(transaction=False)
        for server_id, record in zip(servers, records):
            pipe.set(f"{floor_prefix}record:{server_id}", record)
        pipe.execute()
        record_floor = usage(redis_client, [f"{floor_prefix}record:*"])

        for server_id in servers:
            ctx = RequestContext("admin", "admin", ["admin", "member", "reader"])
            instance = runtime.store.get_instance(server_id)
            assert instance is not None
            live_migrate(runtime.service, ctx, instance, LiveMigrationRequest(host=None, block_migration=None))
        in_flight, in_flight_info = usage(redis_client, mine), used()

        floor_queue = f"bench-memfloor-{token}"
        for server_id in servers:
            redis_client.hset(f"{floor_prefix}floor:{server_id}", "task_state", "os-migrateLive")
            runtime.celery.send_task(NOOP, args=[server_id], queue=floor_queue, task_id=f"{uuid.uuid4()}:0")
        accept_floor = usage(redis_client, [f"{floor_prefix}floor:*", f"*{floor_queue}*"])
    finally:
        runtime.store.delete_all()
        delete_matching(redis_client, f"*{token}*")
        runtime.celery.close()
        shutil.rmtree(workdir, ignore_errors=True)

    figures = [
        Figure("g", "Redis bytes per ACTIVE server", (with_servers - base) / count,
               "its JSON record alone", record_floor / count, "B"),
        Figure("g", "Redis bytes per in-flight os-migrateLive", (in_flight - with_servers) / count,
               "HSET + Celery message", accept_floor / count, "B"),
    ]
    notes = [(f"(g) {count} servers, {count} in-flight live migrations (no worker); INFO used_memory delta per "
              f"server {(with_servers_info - base_info) / count:,.0f} B, per in-flight action "
              f"{(in_flight_info - with_servers_info) / count:,.0f} B (the shared Redis's other clients included)")]
    return figures, notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int)
    args = parser.parse_args(argv)
    figures, notes = run(args.quick, args.count)
    for line in [*notes, *(f.line() for f in figures)]:
        print(line)


if __name__ == "__main__":
    main()
