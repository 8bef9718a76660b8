"""How long an action takes in `compute-actions dev` against the production shape, in the same run.

Both run the same generated fleet (bench/generated_fleet.py, 4 identical hosts) with
``[fleet] duration_scale = 0``, so every simulated operation takes no time and what is measured
is the engine and its queue:

  production  `compute-actions api` (gunicorn) + one `compute-actions worker` on real Redis
              (a private key prefix and queue)
  dev         `compute-actions dev` (API + embedded worker on threads, kombu's memory
              transport, fakeredis), one process

On each, one server is created through the API, then ``--runs`` rounds of the asynchronous
actions that need no os-resetState: injectNetworkInfo, changePassword, os-migrateLive (2.68:
checks after the 202; the server goes back and forth) and createBackup (rotation 1). Each
sample is the server-recorded time of the action: its ``start_time`` (written in the MULTI
that accepted it) to the latest ``finish_time`` of its events, read through
``GET /servers/{id}/os-instance-actions/{request_id}`` (2.84). Printed: p50 and p90 per action
and mode, and the dev/production ratio of the p50s. Wall-clock numbers drift on a small box;
the ratios are what to compare.

    .venv/bin/python bench/dev_vs_production.py [--runs 15]

bench/run.py calls ``run`` (section f; 5 runs in its quick mode).
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import DB, REDIS_URL, Figure, free_port, stop, wait_http, wait_ready
from generated_fleet import write_fleet

from compute.store import Store

IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"
ADMIN = {"X-Auth-Token": "admin:admin", "Content-Type": "application/json"}
# Each action's body, microversion, and the event that ends it.
ACTIONS: dict[str, tuple[Callable[[int], dict], str, str]] = {
    "injectNetworkInfo": (lambda i: {"injectNetworkInfo": None}, "2.1", "compute_inject_network_info"),
    "changePassword": (lambda i: {"changePassword": {"adminPass": f"pw-{i}"}}, "2.1",
                       "compute_set_admin_password"),
    "os-migrateLive": (lambda i: {"os-migrateLive": {"host": None, "block_migration": "auto"}}, "2.68",
                       "compute_post_live_migration_at_destination"),
    "createBackup": (lambda i: {"createBackup": {"name": f"b-{i}", "backup_type": "daily", "rotation": 1}},
                     "2.1", "compute_backup_instance"),
}


class Api:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, path: str, body: object = None, version: str = "2.1",
             token: str = "admin:admin") -> tuple[int, dict, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {**ADMIN, "X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"}
        conn.request(method, f"/v2.1{path}", body=None if body is None else json.dumps(body), headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, (json.loads(raw) if raw else {}), {k.lower(): v for k, v in resp.getheaders()}

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.005)


def stored(value: str) -> float:
    return dt.datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=dt.UTC).timestamp()


def measure(api: Api, runs: int) -> dict[str, list[float]]:
    status, body, _ = api.call("POST", "/servers", {"server": {
        "name": "bench", "imageRef": IMAGE_ID, "flavorRef": "1", "networks": "none"}}, token="admin:admin")
    assert status == 202, (status, body)
    server_id = body["server"]["id"]

    def server() -> dict:
        return api.call("GET", f"/servers/{server_id}")[1]["server"]

    api.wait("the server to be ACTIVE", lambda: server()["status"] == "ACTIVE")
    samples: dict[str, list[float]] = {name: [] for name in ACTIONS}
    for i in range(runs + 1):  # the first round warms both up and is not counted
        for name, (body_of, version, last_event) in ACTIONS.items():
            status, answer, headers = api.call("POST", f"/servers/{server_id}/action", body_of(i), version)
            assert status == 202, (name, status, answer)
            request_id = headers["x-openstack-request-id"]
            found: dict = {}

            def ended(found: dict = found, request_id: str = request_id, last_event: str = last_event) -> bool:
                found.update(api.call("GET", f"/servers/{server_id}/os-instance-actions/{request_id}",
                                      version="2.84")[1]["instanceAction"])
                return any(e["event"] == last_event and e["finish_time"] for e in found["events"])

            api.wait(f"{name} to end", ended)
            api.wait("the server to be idle", lambda: server()["OS-EXT-STS:task_state"] is None)
            if any(e["result"] != "Success" for e in found["events"]):
                raise SystemExit(f"{name} failed: {found['events']}")
            if i:
                finished = max(stored(e["finish_time"]) for e in found["events"])
                samples[name].append(finished - stored(found["start_time"]))
    return samples




@contextmanager
def production(env: dict[str, str], redis_url: str, log_dir: Path) -> Iterator[Api]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    queue = f"bench-{prefix}"
    db = DB["dev_vs_production"]
    env = dict(env, COMPUTE_ACTIONS_REDIS__STORE_URL=f"{redis_url}/{db}", COMPUTE_ACTIONS_REDIS__BROKER_URL=f"{redis_url}/{db}",
               COMPUTE_ACTIONS_REDIS__KEY_PREFIX=prefix, COMPUTE_ACTIONS_ENGINE__QUEUE=queue)
    api = Api(free_port())
    log = log_dir / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "-n", f"devbench-{prefix.strip(':')}@%h"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    gunicorn = subprocess.Popen([sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{api.port}",
                                 "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        wait_http(api.port, gunicorn)
        wait_ready([worker], [log], [f"devbench-{prefix.strip(':')}@%h"], f"{redis_url}/{db}")
        yield api
    finally:
        stop(gunicorn, worker)
        Store(redis.Redis.from_url(f"{redis_url}/{db}", decode_responses=True), prefix=prefix).delete_all()
        broker = redis.Redis.from_url(f"{redis_url}/{db}", decode_responses=True)
        for key in broker.scan_iter(f"*{queue}*"):
            broker.delete(key)


@contextmanager
def dev(env: dict[str, str]) -> Iterator[Api]:
    api = Api(free_port())
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "dev", "--port", str(api.port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(api.port, proc)
        yield api
    finally:
        stop(proc)


def both(runs: int, redis_url: str) -> dict[str, dict[str, list[float]]]:
    """Samples per mode and action: production first, then dev, on the same generated fleet."""
    fleet_file = write_fleet(4, {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTE_ACTIONS_")}
    env.update(PYTHONPATH=str(ROOT), COMPUTE_ACTIONS_FLEET__FLEET_FILE=str(fleet_file),
               COMPUTE_ACTIONS_FLEET__DURATION_SCALE="0", COMPUTE_ACTIONS_LOG_LEVEL="WARNING")
    results = {}
    with production(env, redis_url, Path(tempfile.mkdtemp(prefix="bench-dev-"))) as api:
        results["production"] = measure(api, runs)
    with dev(env) as api:
        results["dev"] = measure(api, runs)
    return results


def p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] * 1000


def run(quick: bool = False) -> tuple[list[Figure], list[str]]:
    """The figures of bench/run.py (f): per action, dev p50 against production p50 (target <= 2)."""
    runs = 5 if quick else 15
    results = both(runs, REDIS_URL)
    figures = [Figure("f", f"{name} dev p50", p(results["dev"][name], 50), "production p50",
                      p(results["production"][name], 50), "ms", "<= 2") for name in ACTIONS]
    notes = [f"(f) server-recorded time per action, duration_scale 0, {runs} runs each; production = gunicorn "
             f"+ 1 worker + real Redis; dev = compute-actions dev (p90 dev {name}: "
             f"{p(results['dev'][name], 90):.1f} ms, production {p(results['production'][name], 90):.1f} ms)"
             for name in ACTIONS]
    return figures, notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--redis", default=REDIS_URL)
    args = parser.parse_args(argv)
    results = both(args.runs, args.redis)

    print(f"server-recorded time per action (start_time -> last event finish_time), duration_scale 0, "
          f"{args.runs} runs each; production = gunicorn + 1 worker + real Redis; dev = compute-actions dev")
    print(f"{'action':20}{'prod p50':>10}{'prod p90':>10}{'dev p50':>10}{'dev p90':>10}{'dev/prod':>10}")
    ratios = []
    for name in ACTIONS:
        prod, dv = results["production"][name], results["dev"][name]
        ratios.append(p(dv, 50) / p(prod, 50))
        print(f"{name:20}{p(prod, 50):9.1f}ms{p(prod, 90):8.1f}ms{p(dv, 50):8.1f}ms{p(dv, 90):8.1f}ms"
              f"{ratios[-1]:10.2f}")
    print(f"worst dev/production ratio of the p50s: {max(ratios):.2f}")


if __name__ == "__main__":
    main()
