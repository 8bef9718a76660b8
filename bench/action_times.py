"""How long the multi-step actions take on real Redis with a real worker, against a floor
measured in the same run: a cold migration, a confirm, a revert and a backup.

Starts one ``compute-actions worker`` process (prefork, ``--concurrency 1``) on a private
key prefix and queue, and drives the service layer from this process, as the API does.
Each sample is the action's own record: ``start_time`` (written in the MULTI that
accepts it) to ``finish_time`` (written by the worker's last commit).

  floor          injectNetworkInfo: one driver step, one delivery
  migrate        accept -> VERIFY_RESIZE (8 steps; with --scale 0, one delivery)
  confirmResize  accept -> confirmed, source claim released (4 steps)
  revertResize   accept -> back on the source (5 steps)
  createBackup   accept -> image active and rotation done (three per run with rotation 2:
                 the third also deletes the first)

With the default ``--scale 0`` every simulated hypervisor operation takes no time, so the
numbers are the engine's own cost (steps, commits, re-enqueues); ``--scale 1`` adds the
fleet's simulated durations (a 20 GiB copy is 1 s at 0.05 s/GiB). Wall-clock times drift
run to run on a noisy box; the ratios to the floor are the numbers to compare.

    .venv/bin/python bench/action_times.py [--runs 30] [--scale 0]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import wait_ready  # noqa: E402

from compute.actions import confirm_resize, revert_resize
from compute.actions.create_backup import create_backup
from compute.actions.create_server import create_server
from compute.actions.delete_server import delete_server
from compute.actions.inject_network_info import inject_network_info
from compute.actions.migrate import migrate as cold_migrate
from compute.context import RequestContext  # noqa: E402
from compute.models import Instance  # noqa: E402
from compute.settings import Settings  # noqa: E402
from compute.store import iso_to_epoch  # noqa: E402
from workers.runtime import Runtime, build_runtime  # noqa: E402

IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"
ENGINE = {"poll_interval_seconds": 0.05, "lease_ttl_seconds": 10.0, "reaper_interval_seconds": 1.0}


def admin() -> RequestContext:
    return RequestContext("admin", "admin", ["admin", "member", "reader"])


def wait_done(runtime: Runtime, request_id: str, timeout: float = 60.0) -> float:
    """Seconds from the action's start_time to its finish_time, once the run has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = runtime.store.get_run(request_id)
        if run is not None and run.finished:
            if run.status != "done":
                raise SystemExit(f"{run.flow} {request_id} ended {run.status}: {run.error}")
            action = runtime.store.get_action(request_id)
            assert action is not None and action.finish_time is not None
            return iso_to_epoch(action.finish_time) - iso_to_epoch(action.start_time)
        time.sleep(0.002)
    raise SystemExit(f"{request_id} did not finish in {timeout} s")


def timed(runtime: Runtime, start: Callable[[RequestContext], object]) -> float:
    ctx = admin()
    start(ctx)
    return wait_done(runtime, ctx.request_id)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "-c", "1", "-n", "bench@%h",
                                 "--without-gossip", "--without-mingle"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    wait_ready([proc], [log], ["bench@%h"], env["COMPUTE_ACTIONS_REDIS__BROKER_URL"], timeout=90)
    return proc


def summary(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples) * 1000, statistics.quantiles(samples, n=10, method="inclusive")[8] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--scale", type=float, default=0.0, help="[fleet] duration_scale")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    args = parser.parse_args()

    token = uuid.uuid4().hex[:8]
    settings = Settings(redis={"store_url": f"{args.redis}/1", "broker_url": f"{args.redis}/0",
                               "key_prefix": f"bench-{token}:"},
                        engine={**ENGINE, "queue": f"bench-{token}"}, fleet={"duration_scale": args.scale})
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTE_ACTIONS_")}
    env.update(PYTHONPATH=str(ROOT), COMPUTE_ACTIONS_CONFIG=os.devnull, COMPUTE_ACTIONS_LOG_LEVEL="WARNING",
               COMPUTE_ACTIONS_REDIS__STORE_URL=settings.redis.store_url,
               COMPUTE_ACTIONS_REDIS__BROKER_URL=settings.redis.broker_url,
               COMPUTE_ACTIONS_REDIS__KEY_PREFIX=settings.redis.key_prefix,
               COMPUTE_ACTIONS_FLEET__DURATION_SCALE=str(args.scale),
               **{f"COMPUTE_ACTIONS_ENGINE__{k.upper()}": str(v) for k, v in
                  settings.engine.model_dump().items()})
    runtime = build_runtime(settings)
    times: dict[str, list[float]] = {"floor": [], "migrate": [], "confirmResize": [], "revertResize": [],
                                     "createBackup": []}
    with tempfile.TemporaryDirectory() as tmp:
        worker = start_worker(env, Path(tmp) / "worker.log")
        try:
            for _ in range(args.runs):
                ctx = admin()
                booted = create_server(runtime.service, ctx, name="bench", flavor_id="2", image_id=IMAGE_ID)
                wait_done(runtime, ctx.request_id)

                def current() -> Instance:
                    inst = runtime.store.get_instance(booted.id)
                    assert inst is not None
                    return inst

                times["floor"].append(timed(runtime, lambda c: inject_network_info(runtime.service, c, current())))
                times["migrate"].append(timed(runtime, lambda c: cold_migrate(runtime.service, c,
                                                                                        current())))
                times["confirmResize"].append(timed(runtime, lambda c: confirm_resize.confirm_resize(
                    runtime.service, c, current())))
                timed(runtime, lambda c: cold_migrate(runtime.service, c, current()))
                times["revertResize"].append(timed(runtime, lambda c: revert_resize.revert_resize(
                    runtime.service, c, current())))
                for _ in range(3):
                    times["createBackup"].append(timed(runtime, lambda c: create_backup(runtime.service,
                        c, current(), name="bench", backup_type="daily", rotation=2)))
                timed(runtime, lambda c: delete_server(runtime.service, c, current()))
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            runtime.store.delete_all()
            runtime.celery.close()

    floor_p50, _ = summary(times["floor"])
    print(f"runs: {args.runs}; duration_scale {args.scale}; one worker process (-c 1); real Redis {args.redis}")
    print(f"{'':15}{'p50 ms':>10}{'p90 ms':>10}{'p50/floor':>11}")
    for name, samples in times.items():
        p50, p90 = summary(samples)
        print(f"{name:15}{p50:10.1f}{p90:10.1f}{p50 / floor_p50:11.2f}")


if __name__ == "__main__":
    main()
