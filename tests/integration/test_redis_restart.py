"""Redis SIGKILLed and restarted under a mixed load, with store and broker on that one Redis.

The production layout: one redis-server (``appendonly yes``) holds the store (db 1) and the
Celery broker (db 0). This test runs its own redis-server on a free port in ``tmp_path``, so
killing it touches nothing else; two real ``celery worker`` processes (the conftest's
``start_worker``) and the in-process API side (``runtime``: ComputeService + the real
CeleryEnqueuer) use it.

The load, fixed by ``SEED``: live migrations, cold migrations then their confirms, backups
with rotation, and os-resetState calls from a client thread that keeps going through the
outage. While the live migrations, cold migrations and backups are running, Redis gets
SIGKILL, stays down ``REDIS_DOWN_SECONDS`` and is started again on the same port and
directory (its AOF brings back everything it had acknowledged). Then:
- both workers are still running (no ``Unrecoverable error`` exit; the kombu 5.7 / celery
  5.7 restore crash is what this guards against, see README "When Redis restarts");
- every accepted action ends (its run is done or error) within ``RECOVERY_TIMEOUT``, no
  server is left with a task_state, no image is left queued or saving, and the claims and
  usage are exactly the servers' flavors;
- a call refused during the outage left nothing behind;
- the logs stay readable: the reaper says once that Redis went away and once that it is
  back, and nothing logs a traceback per sweep.
"""
from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from compute.actions import live_migrate as live_migrate_action
from compute.actions.confirm_resize import confirm_resize
from compute.actions.create_backup import create_backup
from compute.actions.create_server import create_server
from compute.actions.migrate import migrate as cold_migrate
from compute.actions.reset_state import reset_state
from compute.context import RequestContext
from compute.models import Instance
from compute.service import ComputeService
from compute.settings import CONFIG_DIR, Settings
from compute.store import Store
from tests.integration.conftest import (
    DEFAULT_ENGINE,
    DURATION_SCALE,
    Namespace,
    StartWorker,
    WorkerProcess,
)
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import IMAGE_ID, admin_ctx
from tests.support.redis_server import RedisServer, redis_server
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

SEED = 20240611
REDIS_DOWN_SECONDS = 4.0  # the fault itself: 3-5 s without Redis
RECOVERY_TIMEOUT = 75.0  # from the restart until every accepted action has ended
# Simulated seconds per GB at DURATION_SCALE 0.1: a 20 GB flavor-2 disk -> 60 s simulated, 6 s of
# wall time, so the live migrations, cold migrations and backups are all running at the kill.
SLOW = {"live_migration_per_gb": 3.0, "cold_migration_per_gb": 3.0, "snapshot_per_gb": 3.0}
LIVE, COLD, BACKUP, RESET = 3, 2, 2, 2  # 9 servers: under the default quota of 10 instances
HOSTS = ["compute-kvm-1", "compute-kvm-2"]  # same CPU, same shared storage: live migration works both ways
ENDED = ("done", "error")

Call = Callable[[RequestContext], object]


# ---- the test's own redis-server, as the workers' store and broker ------------------------------
@contextlib.contextmanager
def namespace_on(server: RedisServer) -> Iterator[Namespace]:
    """The conftest's namespace, on ``server``: store db 1, broker db 0, as in production."""
    token = uuid.uuid4().hex[:12]
    engine = dict(DEFAULT_ENGINE, queue=f"ca-it-{token}")
    settings = Settings(
        redis={"store_url": f"{server.url}/1", "broker_url": f"{server.url}/0", "key_prefix": f"it-{token}:"},
        engine=engine,
        fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml"), "duration_scale": DURATION_SCALE},
    )
    ns = Namespace(
        token=token, prefix=settings.redis.key_prefix, queue=settings.engine.queue, settings=settings,
        store_client=redis.Redis.from_url(settings.redis.store_url, decode_responses=True),
        broker_client=redis.Redis.from_url(settings.redis.broker_url, decode_responses=True),
    )
    try:
        yield ns
    finally:  # the whole Redis goes away with the test: nothing to clean
        ns.store_client.close()
        ns.broker_client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def namespace(private_redis: RedisServer) -> Iterator[Namespace]:
    """Overrides the conftest's: ``runtime`` and ``start_worker`` then use the private Redis."""
    with namespace_on(private_redis) as ns:
        yield ns


# ---- the load ----------------------------------------------------------------------------------------
@dataclass
class Load:
    """What the test asked for: accepted request ids (with what they were), and refused calls."""

    accepted: dict[str, str] = field(default_factory=dict)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, request id, error)
    resets: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, request_id: str, kind: str) -> None:
        with self.lock:
            self.accepted[request_id] = kind

    def refuse(self, kind: str, request_id: str, exc: BaseException) -> None:
        with self.lock:
            self.refused.append((kind, request_id, f"{type(exc).__name__}: {exc}"))


def boot(runtime: Runtime, name: str, host: str, flavor_id: str) -> tuple[Instance, str]:
    ctx = admin_ctx()
    inst = create_server(runtime.service, ctx, name=name, flavor_id=flavor_id, image_id=IMAGE_ID,
                         availability_zone=f"nova:{host}")
    return inst, ctx.request_id


def current(store: Store, inst: Instance) -> Instance:
    found = store.get_instance(inst.id)
    assert found is not None
    return found


def run_status(store: Store, request_id: str) -> str | None:
    run = store.get_run(request_id)
    return run.status if run else None


def describe(store: Store, load: Load) -> str:
    lines = []
    for rid, kind in load.accepted.items():
        run = store.get_run(rid)
        lines.append(f"{kind} {rid}: {run.status if run else None} cursor={run.cursor if run else None} "
                     f"reaps={run.reaps if run else None} error={run.error if run else None}")
    for inst in store.list_instances():
        lines.append(f"server {inst.name}: {inst.vm_state}/{inst.task_state} on {inst.host}")
    return "\n".join(lines)


def submit(load: Load, kind: str, call: Call) -> str | None:
    """Run one API-side call; an exception means the caller saw an error (refused)."""
    ctx = admin_ctx()
    try:
        call(ctx)
    except Exception as exc:  # noqa: BLE001 - any error is what a caller would see
        load.refuse(kind, ctx.request_id, exc)
        return None
    load.accept(ctx.request_id, kind)
    return ctx.request_id


class ResetClient(threading.Thread):
    """os-resetState on idle servers every 0.2 s, through the outage; refusals are counted, not fatal."""

    def __init__(self, runtime: Runtime, servers: list[Instance], load: Load, rng: random.Random) -> None:
        super().__init__(name="reset-client", daemon=True)
        self.runtime, self.servers, self.load, self.rng = runtime, servers, load, rng
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            inst = self.rng.choice(self.servers)
            state = self.rng.choice(["error", "active"])
            ctx = admin_ctx()
            try:
                reset_state(self.runtime.service, ctx, inst, state)
            except Exception as exc:  # noqa: BLE001 - Redis is down: the caller gets an error
                self.load.refuse("reset", ctx.request_id, exc)
            else:
                with self.load.lock:
                    self.load.resets += 1


def backup_call(service: ComputeService, store: Store, inst: Instance, name: str) -> Call:
    return lambda ctx: create_backup(service, ctx, current(store, inst), name=name, backup_type="daily", rotation=1)


def live_migration_call(service: ComputeService, store: Store, inst: Instance) -> Call:
    """To the other host of HOSTS (the scheduler could pick a newer hypervisor, with no way back)."""
    def call(ctx: RequestContext) -> object:
        now = current(store, inst)
        other = next(h for h in HOSTS if h != now.host)
        request = live_migrate_action.LiveMigrationRequest(host=other, block_migration=None)
        return live_migrate_action.live_migrate(service, ctx, now, request)

    return call


def wait_ended(store: Store, request_ids: list[str | None], what: str) -> None:
    assert None not in request_ids, what
    wait_for(lambda: all(run_status(store, rid) in ENDED for rid in request_ids), 60,  # type: ignore[arg-type]
             lambda: f"{what}: {[(rid, run_status(store, rid)) for rid in request_ids]}")  # type: ignore[arg-type]
    failed = [rid for rid in request_ids if run_status(store, rid) != "done"]  # type: ignore[arg-type]
    assert failed == [], f"{what}: {failed}"


def worker_lines(worker: WorkerProcess, *needles: str) -> list[str]:
    return [line for line in worker.log().splitlines() if any(n in line for n in needles)]


# ---- the test -------------------------------------------------------------------------------------
def test_redis_killed_under_load__workers_survive_and_every_accepted_action_ends(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker, private_redis: RedisServer,
        tmp_path: Path) -> None:
    rng = random.Random(SEED)
    store, service = runtime.store, runtime.service
    workers = [start_worker(name, wait=False) for name in ("w1", "w2")]
    for worker in workers:
        worker.wait_ready()

    # Servers for each kind of action, built by the workers before the fault; each backup
    # server gets its first backup (b1) too.
    plan = ["live"] * LIVE + ["cold"] * COLD + ["backup"] * BACKUP + ["reset"] * RESET
    rng.shuffle(plan)
    servers: dict[str, list[Instance]] = {kind: [] for kind in ("live", "cold", "backup", "reset")}
    builds = []
    for i, kind in enumerate(plan):
        inst, rid = boot(runtime, f"{kind}-{i}", rng.choice(HOSTS), "1" if kind == "reset" else "2")
        servers[kind].append(inst)
        builds.append(rid)
    wait_ended(store, builds, "the servers to build")
    setup = Load()
    wait_ended(store, [submit(setup, "backup", backup_call(service, store, inst, "b1")) for inst in servers["backup"]],
               "the first backups")
    assert setup.refused == [], setup.refused

    # Wave 1: slow operations, all of them running when Redis dies; resets from a client thread.
    runtime.fleet.set_durations(SLOW)
    load = Load()
    first: dict[str, str | None] = {}
    for inst in servers["live"]:
        first[inst.id] = submit(load, "live-migration", live_migration_call(service, store, inst))
    for inst in servers["cold"]:
        first[inst.id] = submit(load, "cold-migration", lambda ctx, inst=inst: cold_migrate(
            service, ctx, current(store, inst)))
    for inst in servers["backup"]:
        first[inst.id] = submit(load, "backup", backup_call(service, store, inst, "b2"))
    assert None not in first.values(), load.refused
    resets = ResetClient(runtime, servers["reset"], load, random.Random(SEED + 1))
    resets.start()
    wait_for(lambda: all(run_status(store, rid) in ("running", "waiting") for rid in first.values()), 30,
             lambda: f"wave 1 to be under way\n{describe(store, load)}")

    # The fault: SIGKILL, down for REDIS_DOWN_SECONDS, then the same port and directory again.
    private_redis.kill()
    killed_at = time.monotonic()
    down = Load()
    assert submit(down, "backup", backup_call(service, store, servers["backup"][0], "refused")) is None
    while time.monotonic() < killed_at + REDIS_DOWN_SECONDS:  # the fault itself, not a synchronisation
        time.sleep(0.05)
    private_redis.start()
    restarted_at = time.monotonic()

    # Wave 2, after the restart: as each wave-1 action ends, its server gets the next one
    # (cold migrations their confirm, live migrations a second move, backups b3).
    second: dict[str, str | None] = {}
    wave1_ended: list[float] = []

    def follow_up(inst: Instance, kind: str) -> None:
        if kind == "cold":
            if current(store, inst).vm_state != "resized":
                second[inst.id] = None  # the migration failed: nothing to confirm
                return
            call = lambda ctx: confirm_resize(service, ctx, current(store, inst))
        elif kind == "live":
            call = live_migration_call(service, store, inst)
        else:
            call = backup_call(service, store, inst, "b3")
        second[inst.id] = submit(load, f"{kind}-follow-up", call)

    def everything_ended() -> bool:
        if not any(w.alive() for w in workers):
            return True  # nothing will ever finish them: fail below on the workers' exit
        with contextlib.suppress(redis.exceptions.RedisError):
            if not wave1_ended and all(run_status(store, rid) in ENDED for rid in first.values()):  # type: ignore[arg-type]
                wave1_ended.append(time.monotonic() - restarted_at)
            for kind in ("live", "cold", "backup"):
                for inst in servers[kind]:
                    if inst.id not in second and run_status(store, first[inst.id]) in ENDED:  # type: ignore[arg-type]
                        follow_up(inst, kind)
            return len(second) == len(first) and all(run_status(store, rid) in ENDED for rid in list(load.accepted))
        return False

    wait_for(everything_ended, RECOVERY_TIMEOUT, lambda: f"every accepted action to end\n{describe(store, load)}",
             interval=0.2)
    recovered_after = time.monotonic() - restarted_at
    resets.stopped.set()
    resets.join(timeout=5)
    for inst in servers["reset"]:  # the client's last word on its servers
        reset_state(service, admin_ctx(), current(store, inst), "active")

    alive = [w.alive() for w in workers]
    outcomes = [run_status(store, rid) for rid in load.accepted]
    summary = {
        "workers_alive": sum(alive), "workers": len(workers), "accepted": len(load.accepted),
        "ended": sum(s in ENDED for s in outcomes), "done": outcomes.count("done"), "error": outcomes.count("error"),
        "resets_accepted": load.resets, "refused": len(load.refused) + len(down.refused),
        "seconds_from_restart_to_wave1_ended": round(wave1_ended[0], 1) if wave1_ended else None,
        "seconds_from_restart_to_all_ended": round(recovered_after, 1),
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nredis restart summary: {json.dumps(summary)}")

    for worker, up in zip(workers, alive, strict=True):
        assert up, (f"worker {worker.name} exited with {worker.proc.returncode} after the Redis restart:\n"
                    + "\n".join(worker_lines(worker, "CRITICAL", "Unrecoverable", "Restoring")))
    assert summary["ended"] == summary["accepted"], describe(store, load)
    refused_follow_ups = [entry for entry in load.refused if entry[0].endswith("follow-up")]
    assert refused_follow_ups == [], refused_follow_ups

    # Every server is at rest, with the claims and images its history implies.
    for inst in store.list_instances():
        assert inst.task_state is None, f"{inst.name} left in {inst.vm_state}/{inst.task_state}"
        assert inst.vm_state == "active", f"{inst.name} is {inst.vm_state}"
    assert_claims_follow_servers(store)
    stuck = [(i.name, i.status) for i in store.list_images() if i.status in ("queued", "saving")]
    assert stuck == [], stuck
    for inst in servers["backup"]:  # rotation 1: exactly one backup remains, the newest that succeeded
        mine = [i.name for i in store.list_images() if i.properties.get("instance_uuid") == inst.id]
        assert len(mine) == 1 and mine[0] in ("b1", "b2", "b3"), (inst.name, mine)

    # The backup asked for while Redis was down: the caller got an error, and nothing of it exists.
    [(_, refused_rid, error)] = down.refused
    assert "onnect" in error, error
    assert store.get_action(refused_rid) is None and store.get_run(refused_rid) is None
    assert "refused" not in {i.name for i in store.list_images()}

    # Readable logs: no crash, no gossip restart error, one reaper line each way, no reaper traceback.
    for worker in workers:
        log = worker.log()
        for bad in ("Unrecoverable error", "Error on restarting", "reaper sweep failed"):
            assert bad not in log, (worker.name, worker_lines(worker, bad))
        assert len(worker_lines(worker, "reaper: Redis unreachable")) == 1, worker_lines(worker, "reaper: Redis")
        assert len(worker_lines(worker, "reaper: Redis is reachable again")) == 1, worker_lines(worker, "reaper:")
