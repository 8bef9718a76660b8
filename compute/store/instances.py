"""Server records: create, compare-and-set under the task_state table, purge."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import redis

from compute import errors
from compute.models import FlowRun, Instance, InstanceAction, QuotaSnapshot, utcnow
from compute.states import check_task_transition
from compute.store.actions import ActionRecords
from compute.store.quotas import QuotaRecords, holding


class NewServer(NamedTuple):
    """One server of a create request: its record, its ``create`` action and that action's flow run."""

    instance: Instance
    action: InstanceAction
    run: FlowRun


class InstanceRecords(ActionRecords, QuotaRecords):
    """Every write of a server record also moves its project's usage counters, in the same MULTI:
    a create adds what its flavor takes, ``deleted`` flipping to True (or a purge) gives it back.
    So the counters are always a count of the records, and a release happens exactly once."""

    def get_instance(self, instance_id: str) -> Instance | None:
        return self._load(Instance, self._keys.instance(instance_id))

    def list_instances(self) -> list[Instance]:
        ids = self._client.zrange(self._keys.instance_index(), 0, -1)
        return self._load_many(Instance, (self._keys.instance(i) for i in ids))

    def create_instance(
        self,
        inst: Instance,
        action: InstanceAction,
        run: FlowRun,
        due_in: float,
        *,
        check_quota: Callable[[QuotaSnapshot], None] | None = None,
    ) -> None:
        """The record, its usage, its action and its run in one MULTI.

        ``check_quota(snapshot)`` sees the project's (and user's) limits and usage read under
        WATCH and raises to refuse; a concurrent create or delete of the project changes the
        usage, so the MULTI is discarded and the check runs again on the new numbers.
        """
        def one(snap: QuotaSnapshot) -> int:
            if check_quota is not None:
                check_quota(snap)
            return 1

        self.create_instances(lambda _count: [NewServer(inst, action, run)], 1, due_in,
                              project_id=inst.project_id, user_id=inst.user_id,
                              count_allowed=one if check_quota is not None else None)

    def create_instances(
        self,
        build: Callable[[int], list[NewServer]],
        max_count: int,
        due_in: float,
        *,
        project_id: str,
        user_id: str | None,
        count_allowed: Callable[[QuotaSnapshot], int] | None = None,
    ) -> list[NewServer]:
        """The servers of one create request, all or none: every record, its usage, its action
        and its run in one MULTI.

        ``count_allowed(snapshot)`` reads the project's (and user's) limits and usage under WATCH
        and answers how many of the request's servers (at most ``max_count``) may be created, or
        raises to refuse them all; ``build(count)`` then makes that many (their names depend on
        the count). A concurrent create or delete of the project changes the usage, so the MULTI
        is discarded and both run again on the new numbers.
        """
        last = int(self._client.incrby(self._keys.sequence(), max_count))  # one sequence number per server
        seqs = range(last - max_count + 1, last + 1)
        built: list[NewServer] = []

        def body(pipe: Any) -> None:
            count = max_count
            if count_allowed is not None:
                count = count_allowed(self._read_quota_snapshot(pipe, project_id, user_id))
            built[:] = build(min(count, max_count))
            pipe.multi()
            for seq, new in zip(seqs, built, strict=False):
                self._queue_instance(pipe, new.instance, seq)
                self._queue_usage_change(pipe, None, holding(new.instance))
                self._queue_action_and_run(pipe, new.action, new.run, due_in, seq)

        if count_allowed is None:
            pipe = self._multi()
            body(pipe)
            pipe.execute()
        else:
            self._transaction(body, *self._quota_watch_keys(project_id, user_id))
        return list(built)

    def put_instance(self, inst: Instance) -> None:
        """Write a server as it is, with no action or flow (fixtures and benches seed servers so)."""
        seq = self.next_seq()
        key = self._keys.instance(inst.id)

        def body(pipe: Any) -> None:
            before = self._load(Instance, key, pipe)
            pipe.multi()
            self._queue_instance(pipe, inst, seq)
            self._queue_usage_change(pipe, holding(before), holding(inst))

        self._watched(body, key)

    def _watched(self, body: Callable[[Any], Any], *watch: str) -> Any:
        """``_transaction`` on a pipeline opened here: the same WATCH/MULTI retry loop."""
        while True:
            with self._client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*watch)
                    result = body(pipe)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def _queue_instance(self, pipe: Any, inst: Instance, seq: int) -> None:
        pipe.set(self._keys.instance(inst.id), inst.model_dump_json())
        pipe.zadd(self._keys.instance_index(), {inst.id: seq})

    def update_instance(
        self,
        instance_id: str,
        mutate: Callable[[Instance], None],
        *,
        action: InstanceAction | None = None,
        run: FlowRun | None = None,
        due_in: float = 0.0,
        also: Callable[[Any], None] | None = None,
        undoing: bool = False,
    ) -> Instance:
        """Compare-and-set: ``mutate`` sees the current record and may raise to abort.

        An action record (and its flow run) passed here is written in the same MULTI,
        so a caller never sees a state change without the action that explains it;
        ``also(pipe)`` queues further writes into that MULTI (e.g. a backup's image).
        ``undoing`` puts back a state this process itself changed a moment ago, so the
        transition table (which lists forward moves) is not consulted.
        """
        key = self._keys.instance(instance_id)
        seq = self.next_seq() if action is not None else 0

        def body(pipe: Any) -> Instance:
            inst = self._load(Instance, key, pipe)
            if inst is None:
                raise errors.InstanceNotFound(instance_id)
            held = holding(inst)
            before = inst.task_state
            mutate(inst)
            if not undoing:
                check_task_transition(before, inst.task_state)
            inst.updated_at = utcnow()
            pipe.multi()
            pipe.set(key, inst.model_dump_json())
            self._queue_usage_change(pipe, held, holding(inst))
            if action is not None and run is not None:
                self._queue_action_and_run(pipe, action, run, due_in, seq)
            elif action is not None:
                self._queue_action(pipe, action, seq)
            if also is not None:
                also(pipe)
            return inst

        return self._transaction(body, key)

    def purge_instance_record(self, instance_id: str) -> None:
        """Undo of a create whose message could not be queued: the record, its index entry and the
        usage it held go together."""
        key = self._keys.instance(instance_id)

        def body(pipe: Any) -> None:
            before = self._load(Instance, key, pipe)
            pipe.multi()
            pipe.delete(key)
            pipe.zrem(self._keys.instance_index(), instance_id)
            self._queue_usage_change(pipe, holding(before), None)

        self._watched(body, key)
