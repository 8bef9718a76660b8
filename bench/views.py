"""(e) Do reads grow with the fleet or the history? GET server and list at 5 vs 10,000 hosts, and a
server with 10,000 actions against one with 10.

Two stores on real Redis (this bench's db, a key prefix each), each behind its own
`compute-actions api` (gunicorn, 2 workers):

  small  a generated fleet of 5 hosts
  large  a generated fleet of ``--hosts`` (10,000) hosts

Each gets the same ``--servers`` ACTIVE servers (claims included). In the small store one server
gets 10 recorded actions and another 10,000 (``Store.record_action``, as the API records an
os-resetState). The requests go one at a time on a kept-alive connection, alternating between
the two sides of each comparison so that drift on a shared machine hits both alike:

  GET /servers/{id}                  large vs small
  GET /servers/detail                large vs small
  GET /servers/{id}                  the server with 10,000 actions vs the one with 10
  GET .../os-instance-actions?limit=10 (2.58)   10,000 actions vs 10

Target (issue 12 item 3): every ratio of p50s within 1.2.

    .venv/bin/python bench/views.py [--hosts 10000] [--requests 200] [--quick]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import (
    DB,
    Figure,
    client,
    free_port,
    percentile,
    production_env,
    start_api,
    stop,
    wait_http,
    wait_quiet,
)
from generated_fleet import host_names, place_servers, write_fleet

from compute.models import InstanceAction
from compute.store import Store
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet

HEADERS = {"X-Auth-Token": "admin:admin"}


class Client:
    """One kept-alive connection; each ``get`` returns milliseconds."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str, version: str = "2.1") -> float:
        for attempt in range(2):  # gunicorn closes an idle kept-alive connection after 2 s
            began = time.perf_counter()
            try:
                self.conn.request("GET", path, headers={**HEADERS, "OpenStack-API-Version": f"compute {version}"})
                resp = self.conn.getresponse()
                resp.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
                continue
            if resp.status != 200:
                raise SystemExit(f"GET {path} answered {resp.status}")
            return (time.perf_counter() - began) * 1000
        raise AssertionError("unreachable")


def seed_actions(store: Store, server_id: str, count: int) -> None:
    """``count`` finished os-resetState records, from 8 threads (each record is its own MULTI)."""
    def one(_: int) -> None:
        store.record_action(InstanceAction(request_id=f"req-{uuid.uuid4()}", action="os-resetState",
                                           instance_uuid=server_id, user_id="admin", project_id="admin",
                                           finish_time="2026-01-01T00:00:00.000000"))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def compare(requests: int, measured: tuple[Client, str, str], floor: tuple[Client, str, str]) -> tuple[list, list]:
    """Alternate the two GETs ``requests`` times (after 10 of each to warm up); their samples."""
    samples: tuple[list[float], list[float]] = ([], [])
    for index in range(requests + 10):
        for side, (api, path, version) in enumerate((measured, floor) if index % 2 else (floor, measured)):
            elapsed = api.get(path, version)
            if index >= 10:
                samples[side].append(elapsed)
    return samples


def run(quick: bool = False, hosts: int = 10_000, requests: int | None = None,
        servers: int = 20) -> tuple[list[Figure], list[str]]:
    requests = requests or (60 if quick else 200)
    db = DB["views"]
    token = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="bench-views-"))
    redis_client = client(db)
    sides: dict[str, dict] = {}
    procs = []
    notes = []
    try:
        for name, host_count in (("small", 5), ("large", hosts)):
            prefix = f"bench-views-{name}-{token}:"
            fleet_file = write_fleet(host_count, {}, directory=str(workdir))
            store = Store(redis_client, prefix=prefix)
            began = time.monotonic()
            seed_fleet(store, SimulatedFleet(store), fleet_file)
            seeded = time.monotonic() - began
            ids = place_servers(store, servers, host_names(store))
            notes.append(f"(e) {name}: {host_count} hosts seeded in {seeded:.1f} s, {servers} servers")
            port = free_port()
            procs.append(start_api(production_env(db, prefix, f"bench-{prefix}", fleet_file), port))
            sides[name] = {"store": store, "servers": ids, "port": port, "last_host": host_names(store)[-1]}
        small = sides["small"]
        quiet, busy = small["servers"][0], small["servers"][1]
        began = time.monotonic()
        seed_actions(small["store"], quiet, 10)
        seed_actions(small["store"], busy, 10_000)
        notes.append(f"(e) 10,010 actions recorded in {time.monotonic() - began:.1f} s")
        for proc, side in zip(procs, sides.values()):
            wait_http(side["port"], proc)
        wait_quiet(procs)
        apis = {name: Client(side["port"]) for name, side in sides.items()}
        server_path = f"/v2.1/servers/{sides['large']['servers'][2]}"
        small_path = f"/v2.1/servers/{small['servers'][2]}"
        comparisons = [
            (f"GET /servers/{{id}} at {hosts} hosts", (apis["large"], server_path, "2.1"),
             "at 5 hosts", (apis["small"], small_path, "2.1")),
            (f"GET /servers/detail ({servers} servers) at {hosts} hosts", (apis["large"], "/v2.1/servers/detail", "2.1"),
             "at 5 hosts", (apis["small"], "/v2.1/servers/detail", "2.1")),
            ("GET /servers/{id} with 10,000 actions", (apis["small"], f"/v2.1/servers/{busy}", "2.1"),
             "with 10 actions", (apis["small"], f"/v2.1/servers/{quiet}", "2.1")),
            ("GET os-instance-actions?limit=10 (2.58) of 10,000",
             (apis["small"], f"/v2.1/servers/{busy}/os-instance-actions?limit=10", "2.58"),
             "of 10", (apis["small"], f"/v2.1/servers/{quiet}/os-instance-actions?limit=10", "2.58")),
            (f"GET os-hypervisors/statistics at {hosts} hosts",
             (apis["large"], "/v2.1/os-hypervisors/statistics", "2.1"),
             "at 5 hosts", (apis["small"], "/v2.1/os-hypervisors/statistics", "2.1")),
            (f"GET os-hypervisors?hypervisor_hostname_pattern= (2.53, one match) at {hosts} hosts",
             (apis["large"], f"/v2.1/os-hypervisors?hypervisor_hostname_pattern={sides['large']['last_host']}", "2.53"),
             "at 5 hosts",
             (apis["small"], f"/v2.1/os-hypervisors?hypervisor_hostname_pattern={small['last_host']}", "2.53")),
        ]
        figures = []
        for name, measured, floor_name, floor in comparisons:
            got, base = compare(requests, measured, floor)
            figures.append(Figure("e", f"{name} p50", percentile(got, 50), f"{floor_name} p50",
                                  percentile(base, 50), "ms", "<= 1.2"))
            figures.append(Figure("e", f"{name} p99", percentile(got, 99), f"{floor_name} p99",
                                  percentile(base, 99), "ms"))
        notes.append(f"(e) {requests} GETs per figure, one at a time, alternating with its floor")
    finally:
        stop(*procs)
        for side in sides.values():
            side["store"].delete_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures, notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--requests", type=int)
    args = parser.parse_args(argv)
    figures, notes = run(args.quick, args.hosts, args.requests)
    for line in [*notes, *(f.line() for f in figures)]:
        print(line)


if __name__ == "__main__":
    main()
