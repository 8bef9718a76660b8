"""Chaos: worker processes SIGKILLed at random under a mixed load, then the invariants.

The stack is real: the real Redis, ``WORKERS`` real ``celery worker`` processes on this test's
own queue and key prefix (tests/integration/conftest.py), and the API side in this process
(ComputeService and the real CeleryEnqueuer), as in tests/integration/test_redis_restart.py.

Everything random comes from ``SEED`` (``COMPUTE_ACTIONS_CHAOS_SEED`` replays another one):
- the load: ``SERVERS`` servers, then, until ``CHAOS_SECONDS`` have passed or ``MAX_ACTIONS``
  were accepted, a random action valid for the state of a random idle server:
  os-migrateLive (no host: the scheduler picks), migrate then confirmResize or revertResize,
  createBackup (two backup types, rotation ``ROTATION``), os-resetState; and now and then one
  on a busy server, which must be a 409 (or accepted, if it has just become idle);
- the chaos (tests/chaos/cluster.py): a kill schedule drawn in advance. At each instant one
  worker's whole process group gets SIGKILL (main process and pool child: nothing is acked,
  its lease is left to expire), preferably a worker inside a delivery at that moment, and a
  new worker takes its slot. The last ready worker is never killed. Some kills start a
  chain: the worker that resumes the same action is killed again each time, one time past
  ``[engine] max_reaps``, so that the reaper gives up on it and rolls it back. Every
  hypervisor call stalls ``STALL_SECONDS`` inside its step, so kills land inside steps.
Which server is idle at a given moment depends on timing, so two runs with one seed draw the
same sequence, not the same history; every history must satisfy the same invariants.

Then the chaos stops, at least one worker is ready, every accepted action is awaited (bounded,
polling) and every resized server is confirmed or reverted. The invariants:
- every accepted action (202, and the 204 of confirmResize) has its instance action with a
  finish_time and no event left open, and its flow run ended: done, or error with the
  action's message ``Error``. The only error allowed is an action abandoned after
  ``[engine] max_reaps`` lost workers (only two identical hosts take servers, so nothing else
  can fail); every error is printed with its reason;
- an idle server never refused an action (409), and a busy one never accepted it twice;
- no server has a task_state, no run is still due, no lease is held;
- the claims and usage of every host are exactly its servers' flavors;
- for each (server, backup_type): at most ``ROTATION`` backups, all ``active``, and the
  rotation set holds exactly those; no image anywhere is queued or saving;
- every migration is in an ended status.
A one-line summary (accepted, done/error, kills, durations) is printed and written to
``summary.json`` in the test's tmp_path.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compute import errors
from compute.actions.confirm_resize import confirm_resize
from compute.actions.create_backup import create_backup
from compute.actions.create_server import create_server
from compute.actions.live_migrate import LiveMigrationRequest, live_migrate
from compute.actions.migrate import migrate as cold_migrate
from compute.actions.reset_state import reset_state
from compute.actions.revert_resize import revert_resize
from compute.context import RequestContext
from compute.models import FlowRun, Instance
from compute.states import MIGRATION_ENDED, VmState
from compute.store import Store
from tests.chaos.cluster import Chaos, WorkerPool, schedule
from tests.integration.conftest import Namespace, StartWorker
from tests.support.claims import assert_claims_follow_servers
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.redis]

SEED = int(os.environ.get("COMPUTE_ACTIONS_CHAOS_SEED", "20250611"))
WORKERS = 3
SERVERS = 8
CHAOS_SECONDS = 50.0  # the load runs under the kills this long ...
MAX_ACTIONS = 400  # ... or until this many actions were accepted
KILLS = 100  # the schedule's length; CHAOS_SECONDS ends it first
KILL_GAP = (0.5, 2.0)  # seconds between two kills
IN_DELIVERY_SHARE = 0.7  # of the kills strike a worker that is inside a delivery
CHAIN_SHARE = 0.15  # of those start a chain: the same action's worker killed again at each resume ...
CHAIN_LENGTH = 4  # ... this many times in all: one past [engine] max_reaps (3), so it is abandoned
BUSY_PROBE_SHARE = 0.1  # of the rounds also send an action to a busy server
RECOVERY_TIMEOUT = 90.0  # after the chaos: until every accepted action has ended
ROTATION = 2
BACKUP_TYPES = ("daily", "weekly")
PROJECT = "chaos"
# Only the two kvm hosts take servers: same CPU, same shared storage, so every live migration
# has a destination and every failure counted below comes from the chaos, not from the fleet.
HOSTS = ("compute-kvm-1", "compute-kvm-2")
# Simulated seconds per GB at the tests' duration scale 0.1: a 20 GB flavor-2 disk takes 1 s of
# wall time to copy or snapshot, so the kills land inside moves and uploads.
DURATIONS = {"live_migration_per_gb": 0.5, "cold_migration_per_gb": 0.5, "snapshot_per_gb": 0.5}
# Every hypervisor call of the load blocks its step this long (a slow hypervisor API): kills
# then land inside steps, between a step's first effects and its commit, not only between steps.
STALLED = ("pre_live_migration", "live_migration", "post_live_migration_at_destination",
           "rollback_live_migration_at_destination", "cold_migration", "finish_migration",
           "confirm_migration", "finish_revert_migration", "power_off", "power_on", "destroy", "snapshot")
STALL_SECONDS = 0.3
FLAVOR = "2"
ENDED = ("done", "error")
ABANDONED = "stopped responding"  # workers/reaper.py: the reason of an action given up after max_reaps

# Actions by the state of an idle server, with their weights.
ON_ACTIVE = ["live-migration"] * 3 + ["migrate"] * 3 + ["backup"] * 3 + ["reset-error"]
ON_RESIZED = ["confirm", "confirm", "revert"]
ON_ERROR = ["reset-active"]
PROBES = ["live-migration", "migrate", "backup"]  # refused (409) by a busy server


def chaos_admin() -> RequestContext:
    """An admin of the chaos project (its own request id)."""
    return RequestContext("chaos-admin", PROJECT, ["admin", "member", "reader"])


@dataclass
class Accepted:
    request_id: str
    kind: str
    server: str
    flow: bool


@dataclass
class Load:
    """The API side's load: what it sent, what was accepted, and which server is running what."""

    store: Store
    runtime: Runtime
    rng: random.Random
    servers: list[str] = field(default_factory=list)  # ids, in boot order
    names: dict[str, str] = field(default_factory=dict)
    accepted: dict[str, Accepted] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # server id -> its unfinished action's request id
    probes: Counter[str] = field(default_factory=Counter)  # busy-server probe outcomes
    unexpected: list[str] = field(default_factory=list)  # refusals that should not happen
    backups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- reads ---------------------------------------------------------------------------------
    def server(self, server_id: str) -> Instance:
        inst = self.store.get_instance(server_id)
        assert inst is not None, server_id
        return inst

    def idle(self, server_id: str) -> Instance | None:
        """The server, when its last action has ended and it has no task_state; else None."""
        with self.lock:
            rid = self.pending.get(server_id)
        if rid is not None:
            run = self.store.get_run(rid)
            if run is None or not run.finished:
                return None
            with self.lock:
                self.pending.pop(server_id, None)
        inst = self.server(server_id)
        return inst if inst.task_state is None else None

    def idle_servers(self) -> list[Instance]:
        return [inst for sid in self.servers if (inst := self.idle(sid)) is not None]

    def running_leases(self) -> Iterator[tuple[str, str]]:
        """(request id, lease owner) of the runs inside a delivery now (for the chaos thread)."""
        with self.lock:
            rids = list(self.pending.values())
        for rid in rids:
            run = self.store.get_run(rid)
            if run is not None and run.status == "running" and (holder := self.store.lease_holder(rid)):
                yield rid, holder

    def unfinished(self) -> list[str]:
        return [rid for rid, a in self.accepted.items() if a.flow and not self._ended(rid)]

    def _ended(self, rid: str) -> bool:
        run = self.store.get_run(rid)
        return run is not None and run.status in ENDED

    # ---- writes --------------------------------------------------------------------------------
    def call(self, kind: str, inst: Instance) -> Callable[[RequestContext], object]:
        service = self.runtime.service
        if kind == "live-migration":
            return lambda ctx: live_migrate(service, ctx, inst, LiveMigrationRequest(host=None, block_migration=None))
        if kind == "migrate":
            return lambda ctx: cold_migrate(service, ctx, inst)
        if kind == "confirm":
            return lambda ctx: confirm_resize(service, ctx, inst)
        if kind == "revert":
            return lambda ctx: revert_resize(service, ctx, inst)
        if kind == "backup":
            backup_type = self.rng.choice(BACKUP_TYPES)
            self.backups += 1
            name = f"{inst.name}-{backup_type}-{self.backups}"
            return lambda ctx: create_backup(service, ctx, inst, name=name, backup_type=backup_type,
                                             rotation=ROTATION)
        if kind in ("reset-error", "reset-active"):
            return lambda ctx: reset_state(service, ctx, inst, kind.removeprefix("reset-"))
        raise AssertionError(kind)

    def submit(self, kind: str, inst: Instance, *, probe: bool = False) -> str | None:
        ctx = chaos_admin()
        call = self.call(kind, inst)
        try:
            call(ctx)
        except errors.Conflict as exc:
            if probe:
                self.probes["409"] += 1
            else:
                self.unexpected.append(f"{kind} on idle {inst.name} ({inst.vm_state}/{inst.task_state}): 409 {exc}")
            return None
        except errors.ComputeError as exc:
            self.unexpected.append(f"{kind} on {inst.name} ({inst.vm_state}/{inst.task_state}): "
                                   f"{type(exc).__name__}: {exc}")
            return None
        if probe:
            self.probes["accepted"] += 1
        flow = not kind.startswith("reset-")
        self.accepted[ctx.request_id] = Accepted(ctx.request_id, kind, inst.name, flow)
        if flow:
            with self.lock:
                self.pending[inst.id] = ctx.request_id
        return ctx.request_id

    def round(self) -> bool:
        """One action on a random idle server (and sometimes a probe of a busy one); False if all are busy."""
        if self.rng.random() < BUSY_PROBE_SHARE:
            with self.lock:
                busy = sorted(self.pending)
            if busy:
                self.submit(self.rng.choice(PROBES), self.server(self.rng.choice(busy)), probe=True)
        idle = self.idle_servers()
        if not idle:
            return False
        inst = self.rng.choice(idle)
        if inst.vm_state == VmState.ACTIVE:
            kinds = ON_ACTIVE
        elif inst.vm_state == VmState.RESIZED:
            kinds = ON_RESIZED
        elif inst.vm_state == VmState.ERROR:
            kinds = ON_ERROR
        else:
            self.unexpected.append(f"idle server {inst.name} in vm_state {inst.vm_state}")
            kinds = ON_ERROR  # os-resetState puts it back to active
        self.submit(self.rng.choice(kinds), inst)
        return True

    def wait_all_ended(self, what: str, timeout: float = RECOVERY_TIMEOUT) -> None:
        wait_for(lambda: not self.unfinished(), timeout,
                 lambda: f"{what}: unfinished\n{self.describe(self.unfinished())}", interval=0.2)

    def describe(self, rids: list[str]) -> str:
        lines = []
        for rid in rids:
            a, run = self.accepted[rid], self.store.get_run(rid)
            lines.append(f"  {a.kind} {rid} on {a.server}: "
                         + (f"{run.status} cursor={run.cursor} phase={run.phase} reaps={run.reaps} "
                            f"lost_in_step={run.lost_in_step} lease={self.store.lease_holder(rid)} "
                            f"error={run.error}" if run else "no run"))
        return "\n".join(lines)


def error_reason(run: FlowRun) -> str:
    text = run.error or "(no reason recorded)"
    if ABANDONED in text:
        return "abandoned after max_reaps"
    return text.splitlines()[0][:160]


# ---- the test -----------------------------------------------------------------------------------------
@pytest.mark.timeout(270)
@pytest.mark.engine(lease_ttl_seconds=3.0, reaper_interval_seconds=0.3, start_grace_seconds=3.0,
                    poll_interval_seconds=0.3)
def test_workers_killed_at_random_under_mixed_load__every_action_ends_and_the_invariants_hold(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker, tmp_path: Path) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    store = runtime.store
    print(f"\nchaos seed {SEED} (replay with COMPUTE_ACTIONS_CHAOS_SEED={SEED})")

    # The fleet: two hosts take servers; the project may hold them all; moves take about a second.
    for host in store.list_hosts():
        if host.name not in HOSTS:
            store.update_host(host.name, enabled=False, disabled_reason="chaos test: kvm-1 and kvm-2 only")
    store.update_quotas(PROJECT, None, {"instances": 4 * SERVERS, "cores": 8 * SERVERS, "ram": 8192 * SERVERS},
                        lambda snapshot: None)
    runtime.fleet.set_durations(DURATIONS)

    pool = WorkerPool(start_worker, WORKERS)
    pool.start()
    load = Load(store, runtime, rng)
    for i in range(SERVERS):
        ctx = chaos_admin()
        inst = create_server(runtime.service, ctx, name=f"chaos-{i}", flavor_id=FLAVOR, image_id=IMAGE_ID)
        load.servers.append(inst.id)
        load.names[inst.id] = inst.name
        load.accepted[ctx.request_id] = Accepted(ctx.request_id, "create", inst.name, True)
        load.pending[inst.id] = ctx.request_id
    load.wait_all_ended("the servers to build", 60)
    assert all(load.server(sid).vm_state == VmState.ACTIVE for sid in load.servers), load.describe(list(load.accepted))
    for operation in STALLED:
        runtime.fleet.add_fault(operation, mode="stall", seconds=STALL_SECONDS)
    booted = time.monotonic()

    # The load under the chaos.
    plan = schedule(random.Random(SEED + 1), KILLS, KILL_GAP, WORKERS, IN_DELIVERY_SHARE, CHAIN_SHARE, CHAIN_LENGTH)
    chaos = Chaos(pool, plan, load.running_leases)
    chaos.start()
    deadline = time.monotonic() + CHAOS_SECONDS
    rounds = 0
    try:
        while time.monotonic() < deadline and len(load.accepted) < MAX_ACTIONS:
            rounds += 1
            if not load.round():  # every server is busy: wait until one is idle (or the time is up)
                wait_for(lambda: time.monotonic() >= deadline or load.idle_servers(), RECOVERY_TIMEOUT,
                         lambda: f"a server to become idle\n{load.describe(load.unfinished())}", interval=0.1)
    finally:
        chaos.stop()
    chaos_ended = time.monotonic()

    # Recovery: at least one worker, every action ended, then every resized server confirmed or reverted.
    wait_for(pool.any_ready, 60, "a worker to be ready after the chaos", interval=0.2)
    load.wait_all_ended("every accepted action to end after the chaos")
    for _ in range(3):
        resized = [inst for sid in load.servers
                   if (inst := load.server(sid)).vm_state == VmState.RESIZED and inst.task_state is None]
        if not resized:
            break
        for inst in resized:
            load.submit(rng.choice(ON_RESIZED), inst)
        load.wait_all_ended("the final confirms and reverts to end")
    recovered = time.monotonic()

    # ---- the counts -----------------------------------------------------------------------------------
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    error_lines = []
    for rid, a in load.accepted.items():
        if not a.flow:
            outcomes["done"] += 1
            continue
        run = store.get_run(rid)
        assert run is not None, f"{a.kind} {rid} on {a.server}: no flow run"
        outcomes[run.status] += 1
        if run.status == "error":
            reasons[error_reason(run)] += 1
            error_lines.append(f"  error: {a.kind} {rid} on {a.server}: reaps={run.reaps} "
                               f"lost_in_step={run.lost_in_step}: {run.error}")
    summary = {
        "seed": SEED,
        "accepted": len(load.accepted),
        "by_kind": dict(sorted(Counter(a.kind for a in load.accepted.values()).items())),
        "done": outcomes["done"], "error": outcomes["error"], "errors_by_reason": dict(reasons),
        "busy_probes": dict(load.probes),
        "kills": len(chaos.kills), "kills_by_target": dict(Counter(str(k["why"]) for k in chaos.kills)),
        "kills_skipped": chaos.skipped, "workers_started": pool.started, "rounds": rounds,
        "vm_states": dict(Counter(load.server(sid).vm_state for sid in load.servers)),
        "seconds": {"boot": round(booted - began, 1), "chaos": round(chaos_ended - booted, 1),
                    "recovery": round(recovered - chaos_ended, 1), "total": round(time.monotonic() - began, 1)},
    }
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "kill_log": chaos.kills}, indent=2))
    print("chaos summary: " + json.dumps(summary))
    for line in error_lines:
        print(line)

    # ---- the invariants -----------------------------------------------------------------------------
    assert load.unexpected == [], "\n".join(load.unexpected)
    # Only the two kvm hosts take servers, and they can always take each other's: an error other
    # than an abandonment is a step that could not cope with a resume after a kill.
    assert set(reasons) <= {"abandoned after max_reaps"}, "\n".join(error_lines)
    assert chaos.kills, "the chaos killed no worker"
    for rid, a in load.accepted.items():
        action = store.get_action(rid)
        assert action is not None, f"{a.kind} {rid} on {a.server}: no instance action"
        assert action.finish_time is not None, f"{a.kind} {rid} on {a.server}: the instance action never ended"
        open_events = [e.event for e in store.list_events(rid) if e.finish_time is None]
        assert open_events == [], f"{a.kind} {rid} on {a.server}: events never closed: {open_events}"
        if a.flow:
            run = store.get_run(rid)
            assert run is not None and run.status in ENDED, load.describe([rid])
            assert store.lease_holder(rid) is None, f"{a.kind} {rid} on {a.server}: lease still held"
            if run.status == "error":
                assert action.message == "Error", f"{a.kind} {rid} on {a.server}: message {action.message!r}"
    assert store.active_run_count() == 0, "runs are still due for the reaper"

    instances = store.list_instances()
    busy = [f"{i.name}: {i.vm_state}/{i.task_state}" for i in instances if not i.deleted and i.task_state]
    assert busy == [], busy
    assert_claims_follow_servers(store)

    images = store.list_images()
    stuck = [(i.name, i.status) for i in images if i.status in ("queued", "saving")]
    assert stuck == [], stuck
    for inst in instances:
        for backup_type in BACKUP_TYPES:
            mine = [i for i in images if i.properties.get("image_type") == "backup"
                    and i.properties.get("instance_uuid") == inst.id and i.properties.get("backup_type") == backup_type]
            assert len(mine) <= ROTATION, (inst.name, backup_type, [(i.name, i.status, i.created_at) for i in mine])
            assert all(i.status == "active" for i in mine), (inst.name, backup_type, [(i.name, i.status) for i in mine])
            rotation_set = set(store.backups_past_rotation(inst.id, backup_type, 0))
            assert rotation_set == {i.id for i in mine}, (inst.name, backup_type, rotation_set, [i.id for i in mine])

    open_moves = [(m.id, m.migration_type, m.status, load.names.get(m.instance_uuid))
                  for m in store.list_migrations() if m.status not in MIGRATION_ENDED]
    assert open_moves == [], open_moves
