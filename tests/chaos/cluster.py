"""The chaos tier's cluster: a fixed number of worker slots, and a thread that kills them.

``WorkerPool`` keeps ``size`` slots, each holding one real ``celery worker`` process (started
by the integration tier's ``start_worker``, in its own process group). ``Chaos`` follows a
schedule drawn in advance from its seed: at each of its instants (a monotonic deadline, not a
sleep that waits for a result) it SIGKILLs one worker's whole process group, main process and
pool child together, and starts a new worker in that slot at once. It never kills the last
ready worker, so the load keeps moving while a replacement boots.

A kill either targets a worker that is inside a delivery at that instant (it holds the lease
of a run in status ``running``: the worst moment, a step cut off before its commit), or the
slot the schedule names. Some in-delivery kills start a chain: the worker that resumes the
same action is killed too, again and again, until the reaper gives up on the action after
``[engine] max_reaps`` and rolls it back, which is the other legitimate end of an action.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.integration.conftest import StartWorker, WorkerProcess

FIND_DELIVERY_SECONDS = 1.5  # a delivery is short: a few commits, or one stalled hypervisor call
FIND_RESUMED_SECONDS = 10.0  # a cut-off action is resumed once its lease expires and a reaper sweeps


def is_ready(worker: WorkerProcess) -> bool:
    """Booted and consuming (the line ``start_worker``'s own wait looks for), and still alive."""
    if not worker.alive():
        return False
    log = worker.log()
    return f"{worker.name}@" in log and " ready." in log


@dataclass
class WorkerPool:
    start_worker: StartWorker
    size: int
    slots: list[WorkerProcess] = field(default_factory=list)
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Fill every slot, then wait for all of them to be ready (they boot in parallel)."""
        self.slots = [self._spawn() for _ in range(self.size)]
        for worker in self.slots:
            worker.wait_ready()

    def _spawn(self) -> WorkerProcess:
        self.started += 1
        return self.start_worker(f"w{self.started}", wait=False)

    def ready(self) -> list[int]:
        with self.lock:
            return [i for i, w in enumerate(self.slots) if is_ready(w)]

    def any_ready(self) -> bool:
        return bool(self.ready())

    def slot_of_pid(self, pid: int) -> int | None:
        """The slot whose process group ``pid`` (a pool child or a main process) belongs to."""
        try:
            group = os.getpgid(pid)
        except (ProcessLookupError, PermissionError):
            return None
        with self.lock:
            return next((i for i, w in enumerate(self.slots) if w.pgid == group and w.alive()), None)

    def kill_and_replace(self, slot: int) -> WorkerProcess:
        """SIGKILL the slot's whole process group, then start its replacement (not waited for)."""
        with self.lock:
            victim = self.slots[slot]
        victim.kill()
        replacement = self._spawn()
        with self.lock:
            self.slots[slot] = replacement
        return victim


@dataclass(frozen=True)
class Kill:
    after: float  # seconds after the previous kill (or the start of the chaos)
    slot: int  # the slot to kill when no delivery is found, or when ``in_delivery`` is False
    in_delivery: bool  # strike a worker that holds the lease of a running run
    focus: bool = False  # strike the worker that runs the previous victim's action again (a chain)


def schedule(rng: random.Random, count: int, gap: tuple[float, float], slots: int,
             in_delivery_share: float, chain_share: float, chain_length: int) -> list[Kill]:
    """``count`` kills; a share of them start a chain: the same action's worker, killed
    ``chain_length`` times in a row, each time the action is resumed (one past ``max_reaps``
    makes the reaper give up on it, and its steps are rolled back)."""
    plan: list[Kill] = []
    while len(plan) < count:
        plan.append(Kill(round(rng.uniform(*gap), 3), rng.randrange(slots), rng.random() < in_delivery_share))
        if plan[-1].in_delivery and rng.random() < chain_share:
            plan.extend(Kill(0.0, rng.randrange(slots), True, focus=True) for _ in range(chain_length - 1))
    return plan


Lease = tuple[str, str]  # (request id, lease owner "host:pid:token", see tasks/flow.py worker_identity)


class Chaos(threading.Thread):
    """Runs a kill schedule against a pool until the schedule ends or ``stop()`` is called.

    ``running_leases()`` lists (request id, lease owner) of the runs inside a delivery now.
    """

    def __init__(self, pool: WorkerPool, plan: list[Kill], running_leases: Callable[[], Iterable[Lease]]) -> None:
        super().__init__(name="chaos", daemon=True)
        self.pool, self.plan, self.running_leases = pool, plan, running_leases
        self.stopped = threading.Event()
        self.kills: list[dict[str, object]] = []  # what was killed, when, and why
        self.skipped = 0  # instants at which no worker could be killed (only one was ready)
        self.failure: BaseException | None = None
        self.t0 = time.monotonic()
        self.last_run: str | None = None  # the action the last in-delivery kill cut off

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the chaos thread did not stop"
        if self.failure is not None:
            raise AssertionError(f"the chaos thread failed: {self.failure!r}") from self.failure

    def run(self) -> None:
        try:
            deadline = time.monotonic()
            for kill in self.plan:
                deadline = max(deadline, time.monotonic()) + kill.after  # after the previous kill, however long it took
                if self.stopped.wait(max(0.0, deadline - time.monotonic())):
                    return
                self._kill(kill)
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.failure = exc

    def _find_delivery(self, only: str | None, seconds: float) -> tuple[int, str] | None:
        """(slot, request id) of a worker whose pool child holds a running run's lease (of ``only``,
        if given), looked for during at most ``seconds``."""
        until = time.monotonic() + seconds
        while not self.stopped.is_set():
            for rid, owner in sorted(self.running_leases()):
                parts = owner.split(":")
                if (only is None or rid == only) and len(parts) >= 2 and parts[1].isdigit():
                    slot = self.pool.slot_of_pid(int(parts[1]))
                    if slot is not None:
                        return slot, rid
            if time.monotonic() >= until:
                return None
            time.sleep(0.01)  # polling for the moment to strike, not waiting for a result
        return None

    def _kill(self, kill: Kill) -> None:
        found, why = None, "scheduled slot"
        if kill.focus and self.last_run is not None:
            # The lease must run out and a reaper resume the action first: lease TTL + a sweep or two.
            found, why = self._find_delivery(self.last_run, FIND_RESUMED_SECONDS), "the same action, resumed"
        elif kill.in_delivery:
            found, why = self._find_delivery(None, FIND_DELIVERY_SECONDS), "inside a delivery"
        ready = self.pool.ready()
        if len(ready) < 2:  # never the last ready worker: someone must keep the load moving
            self.skipped += 1
            return
        if found is not None and found[0] in ready:
            slot, self.last_run = found
        else:
            n = len(self.pool.slots)
            slot, why, self.last_run = next(s for s in ((kill.slot + k) % n for k in range(n)) if s in ready), \
                "scheduled slot", None
        victim = self.pool.kill_and_replace(slot)
        self.kills.append({"at": round(time.monotonic() - self.t0, 2), "worker": victim.name, "why": why,
                           "action": self.last_run})
