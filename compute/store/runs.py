"""Flow runs: the reaper's due index, the per-action lease, and the step commits made under it."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from compute import errors
from compute.models import ActionEvent, FlowRun, InstanceAction, utcnow
from compute.store.base import StoreBase


class RunRecords(StoreBase):
    def get_run(self, request_id: str) -> FlowRun | None:
        return self._load(FlowRun, self._keys.run(request_id))

    def due_runs(self, now: float, limit: int = 100) -> list[str]:
        return list(self._client.zrangebyscore(self._keys.runs_due(), 0, now, start=0, num=limit))

    def active_run_count(self) -> int:
        return int(self._client.zcard(self._keys.runs_due()))

    # ---- the lease --------------------------------------------------------------------------
    def acquire_lease(self, request_id: str, owner: str, ttl: float) -> bool:
        return bool(self._client.set(self._keys.lease(request_id), owner, nx=True, px=int(ttl * 1000)))

    def lease_holder(self, request_id: str) -> str | None:
        return self._client.get(self._keys.lease(request_id))

    def release_lease(self, request_id: str, owner: str) -> None:
        self._delete_if_held(self._keys.lease(request_id), owner)

    # ---- commits ----------------------------------------------------------------------------
    def commit_run(
        self,
        run: FlowRun,
        *,
        owner: str | None,
        lease_ttl: float,
        due_in: float | None,
        events: Iterable[ActionEvent] = (),
        action_update: dict[str, Any] | None = None,
        release: bool = False,
    ) -> None:
        """Write a flow's progress in one MULTI, only while ``owner`` still holds the lease.

        ``due_in`` None removes the run from the reaper's index (it has finished).
        ``release`` gives the lease back in the same MULTI (the delivery's last commit).
        Raises LeaseLost when another worker took the action over.
        """
        rid = run.request_id
        lease_key = self._keys.lease(rid)
        action_key = self._keys.action(rid)

        def body(pipe: Any) -> None:
            holder, raw_action = pipe.mget(lease_key, action_key)  # one round trip under the WATCH
            if owner is not None and holder != owner:
                raise errors.LeaseLost(rid)
            action = None if raw_action is None else InstanceAction.model_validate_json(raw_action)
            pipe.multi()
            now = utcnow()
            for event in events:
                pipe.hset(self._keys.action_events(rid), event.key, event.model_dump_json())
            if action is not None:
                action.updated_at = now
                for field, value in (action_update or {}).items():
                    setattr(action, field, value)
                pipe.set(action_key, action.model_dump_json())
            run.heartbeat_at = now
            pipe.set(self._keys.run(rid), run.model_dump_json())
            if due_in is None:
                pipe.zrem(self._keys.runs_due(), rid)
            else:
                pipe.zadd(self._keys.runs_due(), {rid: time.time() + due_in})
            if owner is not None and release:
                pipe.delete(lease_key)
            elif owner is not None:
                pipe.pexpire(lease_key, int(lease_ttl * 1000))

        self._transaction(body, lease_key, action_key)

    def claim_stale_run(
        self, request_id: str, now: float, grace: float, decide: Callable[[FlowRun], None]
    ) -> FlowRun | None:
        """The reaper's compare-and-set on a run whose due time passed and that nobody leases.

        ``decide`` adjusts the run (wake, reaps, abort reason) inside the transaction;
        the due time moves ``grace`` ahead so that other reapers skip it. Returns the
        claimed run, or None when another process got there first or it has ended.
        """
        due_key = self._keys.runs_due()
        run_key = self._keys.run(request_id)
        lease_key = self._keys.lease(request_id)

        def body(pipe: Any) -> FlowRun | None:
            score = pipe.zscore(due_key, request_id)
            if score is None or score > now or pipe.exists(lease_key):
                pipe.multi()
                return None
            run = self._load(FlowRun, run_key, pipe)
            pipe.multi()
            if run is None or run.finished:
                pipe.zrem(due_key, request_id)
                return None
            decide(run)
            pipe.set(run_key, run.model_dump_json())
            pipe.zadd(due_key, {request_id: now + grace})
            return run

        return self._transaction(body, due_key, run_key, lease_key)
