"""Finds actions nobody is driving and hands them to a worker again, or gives up on them.

Safe with any number of reapers: each stale action is taken by a compare-and-set in the
store before anything else happens (claim first, side effects after). Two cases:
- accepted but never started (its message was lost, or is stuck behind a dead worker):
  queued again as it was;
- started, but its worker stopped renewing the lease: queued again under a new wake
  number (older copies of its message then drop themselves). After ``max_reaps`` such
  rescues the action is failed with a recorded reason instead, and its steps reverted.
"""
from __future__ import annotations

import logging
import threading
import time

from compute import errors
from compute.models import FlowRun
from compute.queue import Enqueuer
from compute.settings import Settings
from compute.store import Store

LOG = logging.getLogger(__name__)


class Reaper:
    def __init__(self, store: Store, enqueuer: Enqueuer, settings: Settings) -> None:
        self.store = store
        self.enqueuer = enqueuer
        self.engine = settings.engine

    def _decide(self, run: FlowRun) -> None:
        """Queued: send again as is. Waiting: its wake-up message is late (a backlog, or it died
        with a worker) and nothing was in progress, so resume without counting it. Running: a
        worker died inside a step; after ``max_reaps`` of those, give up with the reason, or,
        when it was already rolling back, skip the revert step that keeps dying."""
        if run.status == "queued":
            return
        run.wake += 1
        run.reaps += 1
        if run.status != "running":
            return
        run.lost_in_step += 1
        if run.lost_in_step <= self.engine.max_reaps:
            return
        if run.phase == "revert":
            run.skip_revert_of, run.lost_in_step = run.cursor, 0
        elif not run.abort_reason:
            run.abort_reason = (
                f"The worker running this action stopped responding {run.lost_in_step} times "
                f"(last heartbeat {run.heartbeat_at}); the action was abandoned and rolled back."
            )

    def sweep(self, now: float | None = None) -> list[str]:
        """One pass; returns the request ids it re-enqueued."""
        now = time.time() if now is None else now
        grace = max(self.engine.lease_ttl_seconds, self.engine.start_grace_seconds)
        rescued = []
        for request_id in self.store.due_runs(now):
            run = self.store.claim_stale_run(request_id, now, grace, self._decide)
            if run is None:
                continue
            try:
                self.enqueuer.enqueue(request_id, run.wake)
            except errors.QueueUnavailable:
                LOG.warning("reaper could not queue %s; the next sweep will retry", request_id)
                continue
            LOG.info("reaped %s (status %s, reaps %d)", request_id, run.status, run.reaps)
            rescued.append(request_id)
        return rescued


class ReaperThread(threading.Thread):
    """Runs :meth:`Reaper.sweep` every ``interval`` seconds until stopped."""

    def __init__(self, reaper: Reaper, interval: float) -> None:
        super().__init__(name="compute-actions-reaper", daemon=True)
        self.reaper = reaper
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.reaper.sweep()
            except Exception:  # a Redis blip must not kill the reaper
                LOG.exception("reaper sweep failed")

    def stop(self) -> None:
        self.stopped.set()
