"""Flow runs: the reaper's due index, the per-action lease, and the step commits made under it."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from compute import errors
from compute.models import ActionEvent, FlowRun, InstanceAction, utcnow
from compute.store.base import StoreBase

# KEYS: lease, action, action events, run, runs:due. ARGV: owner ("" for none), "release" or
# "renew", the lease's ttl in ms, the run's JSON, its due epoch ("" once it has finished), the
# request id, the action's JSON ("" for none), then event key, event JSON pairs.
# Returns 0, writing nothing, when an owner is given and does not hold the lease.
COMMIT_RUN = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
if ARGV[7] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('SET', KEYS[2], ARGV[7]) end
redis.call('SET', KEYS[4], ARGV[4])
if ARGV[5] == '' then redis.call('ZREM', KEYS[5], ARGV[6]) else redis.call('ZADD', KEYS[5], ARGV[5], ARGV[6]) end
if ARGV[1] ~= '' then
  if ARGV[2] == 'release' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
return 1
"""


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

    def begin_delivery(self, request_id: str, owner: str, ttl: float
                       ) -> tuple[bool, FlowRun | None, InstanceAction | None]:
        """Take the lease and read the run and its action, in one round trip.

        The reads follow the ``SET NX`` on the server, so when the lease was taken they see every
        commit of an earlier holder: a holder whose lease expired can commit nothing after it
        (``commit_run`` checks the lease in the same script as its writes). Returns whether the
        lease was taken, with the run and action as stored (read either way: a finished or stale
        run is answered so without waiting for the lease).
        """
        pipe = self._client.pipeline(transaction=False)
        pipe.set(self._keys.lease(request_id), owner, nx=True, px=int(ttl * 1000))
        pipe.get(self._keys.run(request_id))
        pipe.get(self._keys.action(request_id))
        taken, raw_run, raw_action = pipe.execute()
        run = None if raw_run is None else FlowRun.model_validate_json(raw_run)
        action = None if raw_action is None else InstanceAction.model_validate_json(raw_action)
        return bool(taken), run, action

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
        action: InstanceAction | None = None,
    ) -> None:
        """Write a flow's progress in one script, only while ``owner`` still holds the lease.

        ``due_in`` None removes the run from the reaper's index (it has finished).
        ``release`` gives the lease back in the same script (the delivery's last commit).
        ``action`` is the run's action as this delivery holds it (``begin_delivery``; under the
        lease only commits write it), updated here in place; None reads it first. It is written
        only while it exists (an action deleted meanwhile stays deleted).
        Raises LeaseLost when another worker took the action over. One round trip.
        """
        rid = run.request_id
        if action is None:
            action = self._load(InstanceAction, self._keys.action(rid))
        now = utcnow()
        action_json = ""
        if action is not None:
            action.updated_at = now
            for field, value in (action_update or {}).items():
                setattr(action, field, value)
            action_json = action.model_dump_json()
        run.heartbeat_at = now
        args: list[Any] = [owner or "", "release" if release else "renew", int(lease_ttl * 1000),
                           run.model_dump_json(), "" if due_in is None else repr(time.time() + due_in),
                           rid, action_json]
        for event in events:
            args += [event.key, event.model_dump_json()]
        keys = [self._keys.lease(rid), self._keys.action(rid), self._keys.action_events(rid),
                self._keys.run(rid), self._keys.runs_due()]
        if not self._script(COMMIT_RUN)(keys=keys, args=args):
            raise errors.LeaseLost(rid)

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
