"""Instance actions and their events: what os-instance-actions shows of every request."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from compute.models import ActionEvent, FlowRun, InstanceAction
from compute.store.base import MarkerNotFound, StoreBase

# KEYS: the action, the server's actions, the run, ``runs:due``. ARGV: the action's JSON, its sequence
# number, the request id, the run's JSON, its due epoch. One command in the accept's MULTI instead
# of four (EVAL, as migrations.CREATE_MIGRATION, so that it never fails alone inside the MULTI).
RECORD_ACTION_AND_RUN = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[3])
return 1
"""

# KEYS: a server's action index. ARGV: a request id. The ids scored above it, newest first; nil
# (false) when it is not indexed. One round trip for the check a flow makes at each state move.
ACTIONS_NEWER = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return false end
return redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. score)
"""


class ActionRecords(StoreBase):
    def _queue_action(self, pipe: Any, action: InstanceAction, seq: int) -> None:
        action.seq = seq
        pipe.set(self._keys.action(action.request_id), action.model_dump_json())
        pipe.zadd(self._keys.instance_actions(action.instance_uuid), {action.request_id: seq})
        self._queue_identity(pipe, action.user_id, action.project_id)

    def _queue_action_and_run(
        self, pipe: Any, action: InstanceAction, run: FlowRun, due_in: float, seq: int
    ) -> None:
        action.seq = seq
        keys = [self._keys.action(action.request_id), self._keys.instance_actions(action.instance_uuid),
                self._keys.run(run.request_id), self._keys.runs_due()]
        pipe.eval(RECORD_ACTION_AND_RUN, len(keys), *keys, action.model_dump_json(), seq, action.request_id,
                  run.model_dump_json(), repr(time.time() + due_in))
        self._queue_identity(pipe, action.user_id, action.project_id)

    def record_action(self, action: InstanceAction) -> None:
        pipe = self._multi()
        self._queue_action(pipe, action, self.next_seq())
        pipe.execute()

    def get_action(self, request_id: str) -> InstanceAction | None:
        return self._load(InstanceAction, self._keys.action(request_id))

    def list_actions(self, instance_id: str) -> list[InstanceAction]:
        """Newest first, as Nova orders them."""
        ids = self._client.zrevrange(self._keys.instance_actions(instance_id), 0, -1)
        return self._load_many(InstanceAction, (self._keys.action(i) for i in ids))

    def page_actions(self, instance_id: str, limit: int, *, marker: str | None = None,
                     keep: Callable[[InstanceAction], bool] | None = None) -> list[InstanceAction]:
        """One page of a server's actions, newest first, read from ``instance:{id}:actions``:
        ``marker`` (a request id of this server, else MarkerNotFound) and ``keep`` as in ``_page_of``."""
        index = self._keys.instance_actions(instance_id)
        below = None
        if marker is not None:
            below = self._score(index, marker)
            if below is None:
                raise MarkerNotFound(marker)
        return self._page_of(InstanceAction, index, self._keys.action, limit, below=below, keep=keep)

    def actions_newer_than(self, instance_id: str, request_id: str) -> list[InstanceAction]:
        """The server's actions recorded after ``request_id``'s, newest first (every one if it is not
        indexed): what was accepted since, without reading the server's whole history."""
        newer = self._script(ACTIONS_NEWER)(keys=[self._keys.instance_actions(instance_id)], args=[request_id])
        if newer is None:
            return self.list_actions(instance_id)
        return self._load_many(InstanceAction, (self._keys.action(i) for i in newer))

    def list_events(self, request_id: str) -> list[ActionEvent]:
        raw = self._client.hgetall(self._keys.action_events(request_id))
        events = [ActionEvent.model_validate_json(v) for v in raw.values()]
        return sorted(events, key=lambda e: (e.start_time, e.key))

    def put_event(self, request_id: str, event: ActionEvent, pipe: Any = None) -> None:
        """Write one event of an action; with ``pipe`` it joins the caller's MULTI (the event of an
        action done in full before its answer, such as lock, goes in with the action itself)."""
        own = pipe is None
        pipe = self._multi() if own else pipe
        pipe.hset(self._keys.action_events(request_id), event.key, event.model_dump_json())
        if own:
            pipe.execute()

    def get_event(self, request_id: str, key: str) -> ActionEvent | None:
        raw = self._client.hget(self._keys.action_events(request_id), key)
        return None if raw is None else ActionEvent.model_validate_json(raw)

    def delete_action(self, action: InstanceAction) -> None:
        """Remove an action with its events and flow run (the undo of a refused enqueue)."""
        rid = action.request_id
        pipe = self._multi()
        pipe.delete(self._keys.action(rid), self._keys.action_events(rid))
        pipe.zrem(self._keys.instance_actions(action.instance_uuid), rid)
        pipe.delete(self._keys.run(rid))
        pipe.zrem(self._keys.runs_due(), rid)
        pipe.execute()
