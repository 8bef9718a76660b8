"""Finds actions nobody is driving and hands them to a worker again, or gives up on them.

Safe with any number of reapers: each stale action is taken by a compare-and-set in the
store before anything else happens (claim first, side effects after). Two cases:
- accepted but never started (its message was lost, or is stuck behind a dead worker):
  queued again as it was;
- started, but its worker stopped renewing the lease: queued again under a new wake
  number (older copies of its message then drop themselves). After ``max_reaps`` such
  rescues the action is failed with a recorded reason instead, and its steps reverted.

While Redis (the store, and in production the broker too) is unreachable, a sweep can do
nothing: :class:`ReaperThread` says so in one WARNING when it first fails and in one when a
sweep works again, and stays quiet in between (README, "When Redis restarts"). A broker
that refuses a publish ends the sweep at the first refusal, so an outage costs one line,
not one per stale action, and leaves the other stale actions unclaimed for the next sweep.
"""
from __future__ import annotations

import logging
import threading
import time

import redis

from compute import errors, telemetry
from compute.models import FlowRun
from compute.queue import Enqueuer
from compute.settings import Settings
from compute.store import Store

LOG = logging.getLogger(__name__)

# Redis not answering: a connection refused or reset, a timeout, or a server still loading its AOF.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError)


class BrokerUnavailable(Exception):
    """A sweep stopped because the broker refused to queue a rescued action."""


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
        """One pass; returns the request ids it re-enqueued.

        Raises BrokerUnavailable at the first refused publish: the action it had claimed
        stays due (its claim moved its deadline by a grace period) and the rest are left
        for the next sweep, which would fail the same way while the broker is down.
        """
        now = time.time() if now is None else now
        grace = max(self.engine.lease_ttl_seconds, self.engine.start_grace_seconds)
        rescued = []
        for request_id in self.store.due_runs(now):
            run = self.store.claim_stale_run(request_id, now, grace, self._decide)
            if run is None:
                continue
            try:
                self.enqueuer.enqueue(request_id, run.wake, action=run.flow, server_id=run.instance_uuid)
            except errors.QueueUnavailable as exc:
                raise BrokerUnavailable(f"could not queue {request_id}: {exc}") from exc
            LOG.info("reaped %s (status %s, reaps %d)", request_id, run.status, run.reaps)
            telemetry.observer().reaper_rescued(abandoned=run.phase == "forward" and bool(run.abort_reason)
                                                and run.lost_in_step == self.engine.max_reaps + 1)
            rescued.append(request_id)
        return rescued


class ReaperThread(threading.Thread):
    """Runs :meth:`Reaper.sweep` every ``interval`` seconds until stopped.

    An unreachable store or broker is an outage, not a bug: one WARNING when it starts,
    one when a sweep works again, DEBUG in between. Anything else is logged with its
    traceback, once per sweep that fails, and the thread keeps sweeping.
    """

    def __init__(self, reaper: Reaper, interval: float) -> None:
        super().__init__(name="compute-actions-reaper", daemon=True)
        self.reaper = reaper
        self.interval = interval
        self.stopped = threading.Event()
        self.outage_since: float | None = None

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.sweep_once()

    def sweep_once(self) -> None:
        try:
            self.reaper.sweep()
        except UNREACHABLE as exc:
            self._unreachable("the store", exc)
        except BrokerUnavailable as exc:
            self._unreachable("the broker", exc)
        except Exception:  # a bug in a sweep must not kill the reaper
            LOG.exception("reaper sweep failed")
        else:
            if self.outage_since is not None:
                LOG.warning("reaper: Redis is reachable again after %.1f s; sweeping",
                            time.monotonic() - self.outage_since)
                self.outage_since = None

    def _unreachable(self, what: str, exc: Exception) -> None:
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            LOG.warning("reaper: Redis unreachable (%s: %s); sweeps pause until it answers", what, exc)
        else:
            LOG.debug("reaper: Redis still unreachable (%s: %s)", what, exc)

    def stop(self) -> None:
        self.stopped.set()
