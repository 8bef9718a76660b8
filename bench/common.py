"""What the benchmarks share: figures with their floor and target, the Markdown table, the machine,
the Redis db each bench owns, and starting and stopping the production processes.

A figure is only ever printed as a ratio against a floor measured in the same run: on a small
shared machine wall-clock numbers drift from run to run, while the ratio of two numbers taken
minutes apart on the same box stays put.
"""
from __future__ import annotations

import datetime as dt
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")

# The tests use dbs 0 (broker) and 1 (store); every bench has a db of its own and a fresh key
# prefix, and deletes only what carries that prefix or queue name.
DB = {"api_accept": 10, "fast_actions": 11, "inflight": 12, "views": 13, "dev_vs_production": 14, "memory": 15}

NOOP = "bench.noop"  # bench/noop_tasks.py


def noop_done_key(prefix: str) -> str:
    """The sorted set of no-op task index -> when it ran (bench/noop_tasks.py)."""
    return f"{prefix}noop:done"


TARGET = re.compile(r"^\s*(<=|>=|≤|≥)\s*([0-9.]+)\s*$")


@dataclass
class Figure:
    """One measured number, the floor it is compared with, and the target for their ratio."""

    bench: str
    name: str
    value: float
    floor_name: str
    floor: float
    unit: str = ""
    target: str = ""  # ">= 0.7" or "<= 2" on the ratio; empty when the issue sets none

    @property
    def ratio(self) -> float:
        return self.value / self.floor if self.floor else float("inf")

    @property
    def met(self) -> bool | None:
        match = TARGET.match(self.target)
        if match is None:
            return None
        bound = float(match.group(2))
        return self.ratio >= bound if match.group(1) in (">=", "≥") else self.ratio <= bound

    def line(self) -> str:
        verdict = {True: "met", False: "MISSED", None: ""}[self.met]
        target = f"target {self.target}" if self.target else ""
        return (f"({self.bench}) {self.name}: {number(self.value)} {self.unit} vs {self.floor_name} "
                f"{number(self.floor)} {self.unit} -> ratio {self.ratio:.2f} {target} {verdict}").rstrip()


def number(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def markdown_table(figures: Iterable[Figure]) -> str:
    rows = ["| bench | figure | value | floor | floor value | ratio | target | met |",
            "|---|---|---|---|---|---|---|---|"]
    for f in figures:
        verdict = {True: "yes", False: "**no**", None: ""}[f.met]
        target = f.target.replace(">=", "≥").replace("<=", "≤")
        rows.append(f"| {f.bench} | {f.name} | {number(f.value)} {f.unit} | {f.floor_name} | "
                    f"{number(f.floor)} {f.unit} | {f.ratio:.2f} | {target} | {verdict} |")
    return "\n".join(rows)


def percentile(samples: list[float], p: float) -> float:
    """Inclusive percentile (the same definition for every figure and floor)."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(p) - 1]


def machine() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    try:
        redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    except redis.RedisError as exc:
        redis_version = f"unreachable ({exc})"
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": str(os.cpu_count()), "cpu": cpu, "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
            "redis": redis_version, "python": platform.python_version(),
            "load average": " ".join(f"{x:.2f}" for x in os.getloadavg())}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(db: int) -> redis.Redis:
    return redis.Redis.from_url(f"{REDIS_URL}/{db}", decode_responses=True)


def delete_matching(redis_client: redis.Redis, pattern: str) -> int:
    found = list(redis_client.scan_iter(match=pattern, count=1000))
    for start in range(0, len(found), 500):
        redis_client.delete(*found[start:start + 500])
    return len(found)


def production_env(db: int, prefix: str, queue: str, fleet_file: Path, duration_scale: float = 1.0) -> dict[str, str]:
    """The environment of `compute-actions api` and `worker` on real Redis, this bench's db and names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTE_ACTIONS_")}
    url = f"{REDIS_URL}/{db}"
    env.update(PYTHONPATH=str(ROOT), COMPUTE_ACTIONS_REDIS__STORE_URL=url, COMPUTE_ACTIONS_REDIS__BROKER_URL=url,
               COMPUTE_ACTIONS_REDIS__KEY_PREFIX=prefix, COMPUTE_ACTIONS_ENGINE__QUEUE=queue,
               COMPUTE_ACTIONS_FLEET__FLEET_FILE=str(fleet_file),
               COMPUTE_ACTIONS_FLEET__DURATION_SCALE=str(duration_scale), COMPUTE_ACTIONS_LOG_LEVEL="WARNING")
    return env


def start_api(env: dict[str, str], port: int, workers: int = 2) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workers.cli", "api", "--bind", f"127.0.0.1:{port}",
                             "--workers", str(workers)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, float, dict[str, str]]:
    """One HTTP request on a fresh connection: (status, seconds taken, lower-cased headers)."""
    import http.client

    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, time.perf_counter() - t0, {k.lower(): v for k, v in resp.getheaders()}


def wait_http(port: int, proc: subprocess.Popen, path: str = "/", timeout: float = 90.0) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port} in {timeout:g} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its living descendants (from /proc; 0 where unreadable)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def wait_quiet(procs: list[subprocess.Popen], share: float = 0.1, timeout: float = 60.0) -> None:
    """Wait until the processes (and their children) use under ``share`` of a core over half a second:
    gunicorn answers before every worker has finished starting, and a start is not what a bench measures."""
    deadline = time.monotonic() + timeout
    before = sum(cpu_seconds(p.pid) for p in procs)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(cpu_seconds(p.pid) for p in procs)
        if now - before < share * 0.5:
            return
        before = now


def start_celery_worker(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(procs: list[subprocess.Popen], logs: list[Path], names: list[str], broker_url: str,
               timeout: float = 120.0) -> None:
    """Wait until every worker (``-n`` names, ``%h`` as Celery expands it) answers a Celery ping.

    A ping is answered by the worker's consumer once it consumes, whatever its log level says.
    """
    from celery import Celery

    host = socket.gethostname()
    wanted = {name.replace("%h", host) for name in names}
    app = Celery("bench-ping", broker=broker_url, set_as_current=False)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for proc, log in zip(procs, logs):
                if proc.poll() is not None:
                    raise SystemExit(f"worker exited with {proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')[-2000:]}")
            answered = {node for reply in app.control.ping(destination=sorted(wanted), timeout=0.5)
                        for node in reply}
            if wanted <= answered:
                return
    finally:
        app.close()
    tails = "\n".join(f"{log.name}: {log.read_text(errors='replace')[-1500:]}" for log in logs)
    raise SystemExit(f"the workers did not answer a ping in {timeout:g} s:\n{tails}")


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
