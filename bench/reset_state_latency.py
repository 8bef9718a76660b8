"""202 latency of os-resetState under gunicorn, against a floor measured in the same run.

Starts `compute-actions api` (gunicorn, sync workers) on real Redis with a private key prefix,
boots one ACTIVE server straight into the store, then sends N sequential requests of each kind
over fresh connections (gunicorn's sync workers close every connection):

  floor        GET /            (version document: no token, no Redis)
  resetState   POST /v2.1/servers/{id}/action {"os-resetState": ...}  (auth, lookup, policy,
               one Redis MULTI with the state change and the finished instance action)

Prints p50/p90/p99 for both and the ratios resetState/floor. Wall-clock numbers on a
2-core noisy box drift run to run; the ratio is the number to compare.

    .venv/bin/python bench/reset_state_latency.py [--requests 1000] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import free_port, request, wait_http  # noqa: E402

from compute.models import Instance  # noqa: E402
from compute.settings import Settings  # noqa: E402
from compute.store import Store  # noqa: E402
from fleet.loader import seed_fleet  # noqa: E402
from fleet.simulator import SimulatedFleet  # noqa: E402


def percentiles(samples: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": qs[49] * 1000, "p90": qs[89] * 1000, "p99": qs[98] * 1000}


def boot_active_server(store: Store) -> str:
    flavor = store.get_flavor("1")
    assert flavor is not None
    inst = Instance(name="bench", project_id="demo", user_id="demo", flavor=flavor, host="compute-kvm-1",
                    node="compute-kvm-1", vm_state="active", power_state=1, launched_at="2026-01-01T00:00:00.000000")
    store.claim_resources("compute-kvm-1", inst.id, flavor)
    store.put_instance(inst)
    return inst.id




def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()

    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               COMPUTE_ACTIONS_REDIS__STORE_URL=f"{args.redis}/1",
               COMPUTE_ACTIONS_REDIS__BROKER_URL=f"{args.redis}/0",
               COMPUTE_ACTIONS_REDIS__KEY_PREFIX=prefix,
               COMPUTE_ACTIONS_ENGINE__QUEUE=f"bench-{prefix}",
               COMPUTE_ACTIONS_LOG_LEVEL="WARNING")
    store = Store(redis.Redis.from_url(f"{args.redis}/1", decode_responses=True), prefix=prefix)
    seed_fleet(store, SimulatedFleet(store), Settings().fleet.fleet_file)
    server_id = boot_active_server(store)

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{port}",
                             "--workers", str(args.workers)], env=env, cwd=ROOT)
    try:
        wait_http(port, proc)
        headers = {"X-Auth-Token": "admin:admin", "Content-Type": "application/json"}
        path = f"/v2.1/servers/{server_id}/action"
        bodies = [json.dumps({"os-resetState": {"state": s}}).encode() for s in ("error", "active")]
        for i in range(50):
            request(port, "GET", "/")
            request(port, "POST", path, bodies[i % 2], headers)
        floor, reset = [], []
        for i in range(args.requests):
            status, elapsed, _ = request(port, "GET", "/")
            assert status == 200, status
            floor.append(elapsed)
            status, elapsed, _ = request(port, "POST", path, bodies[i % 2], headers)
            assert status == 202, status
            reset.append(elapsed)
        recorded = len(store.list_actions(server_id))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        store.delete_all()

    f, r = percentiles(floor), percentiles(reset)
    print(f"requests per kind: {args.requests} (sequential, gunicorn sync x{args.workers}); "
          f"resetState actions recorded: {recorded}")
    print(f"{'':12}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}")
    print(f"{'floor GET /':12}{f['p50']:10.2f}{f['p90']:10.2f}{f['p99']:10.2f}")
    print(f"{'resetState':12}{r['p50']:10.2f}{r['p90']:10.2f}{r['p99']:10.2f}")
    print(f"{'ratio':12}{r['p50'] / f['p50']:10.2f}{r['p90'] / f['p90']:10.2f}{r['p99'] / f['p99']:10.2f}")


if __name__ == "__main__":
    main()
