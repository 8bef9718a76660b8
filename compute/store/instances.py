"""Server records: create, compare-and-set under the task_state table, purge."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import redis

from compute import errors
from compute.models import FlowRun, Instance, InstanceAction, QuotaSnapshot, utcnow
from compute.states import check_task_transition, server_status
from compute.store.actions import ActionRecords
from compute.store.base import MarkerNotFound
from compute.store.quotas import QuotaRecords, holding

# KEYS: a server's record, ``instances:status``; when its host changes also ``instances``, then the
# ``host:{name}`` index it leaves (if any) and the one it enters (if any). ARGV: the record it is
# expected to hold, its new value, the status it leaves and the one it enters ("" for none); when its
# host changes the server's id and how many indexes it leaves (0 or 1). Sets it, moves the count and
# moves the server between the host indexes (at its ``instances`` score) only while it holds that.
SWAP_COUNTED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[3], -1) end
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[4], 1) end
if #KEYS > 2 then
  local entered = 4 + tonumber(ARGV[6])
  for i = 4, entered - 1 do redis.call('ZREM', KEYS[i], ARGV[5]) end
  local score = redis.call('ZSCORE', KEYS[3], ARGV[5])
  if score then
    for i = entered, #KEYS do redis.call('ZADD', KEYS[i], score, ARGV[5]) end
  end
end
return 1
"""


def counted_status(inst: Instance | None) -> str | None:
    """The status a server counts under in ``instances:status``: None once deleted (or gone)."""
    return None if inst is None or inst.deleted else server_status(inst.vm_state, inst.task_state)


class NewServer(NamedTuple):
    """One server of a create request: its record, its ``create`` action and that action's flow run."""

    instance: Instance
    action: InstanceAction
    run: FlowRun


class InstanceRecords(ActionRecords, QuotaRecords):
    """Every write of a server record also moves its project's usage counters, in the same MULTI:
    a create adds what its flavor takes, ``deleted`` flipping to True (or a purge) gives it back.
    So the counters are always a count of the records, and a release happens exactly once.
    The same MULTI moves ``instances:status`` (servers by Nova status) from the status the record
    had, read under WATCH, to the one it gets."""

    def status_counts(self) -> dict[str, int]:
        """Servers not deleted, by Nova status: one HGETALL, whatever their number (statuses at 0 included)."""
        return {status: int(n) for status, n in self._client.hgetall(self._keys.instance_status_counts()).items()}

    def rebuild_status_counts(self) -> int:
        """Fill ``instances:status`` from the records when it is missing and some server is live
        (a store written before it existed): O(servers), once. Returns how many servers it counted.

        Counted under WATCH of the key: every write that moves a server's status also moves the
        key, so one that lands during the count discards this MULTI and the count runs again."""
        key, live = self._keys.instance_status_counts(), self._keys.live_instances()
        if self._client.exists(key) or not self._client.zcard(live):
            return 0

        def body(pipe: Any) -> int:
            counts: dict[str, int] = {}
            ids = self._client.zrange(live, 0, -1)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for inst in self._load_many(Instance, (self._keys.instance(i) for i in chunk)):
                    status = counted_status(inst)
                    if status is not None:
                        counts[status] = counts.get(status, 0) + 1
            pipe.multi()
            pipe.delete(key)
            if counts:
                pipe.hset(key, mapping=counts)
            return sum(counts.values())

        return self._watched(body, key)

    def get_instance(self, instance_id: str) -> Instance | None:
        return self._load(Instance, self._keys.instance(instance_id))

    def list_instances(self) -> list[Instance]:
        """Every server record, oldest first: O(servers), for sweeps and admin tools, not request paths."""
        ids = self._client.zrange(self._keys.instance_index(), 0, -1)
        return self._load_many(Instance, (self._keys.instance(i) for i in ids))

    def page_instances(self, limit: int, *, project_id: str | None = None, deleted: bool = False,
                       marker: str | None = None, keep: Callable[[Instance], bool] | None = None,
                       host: str | None = None) -> list[Instance]:
        """One page of servers, newest first, reading the page from an index (not every record).

        ``project_id`` None: every project's. ``deleted`` False: the servers that are not deleted
        (``instances:live`` or ``project:{p}:instances``); True: only the deleted ones (the whole
        ``instances`` index, skipping the others). ``host``: only the servers whose record names that
        host, from ``host:{name}:instances`` (or ``:deleted_instances``), the project's skipped while
        read. ``marker``: after that server (which must be in the index read, else ``MarkerNotFound``).
        """
        if host is not None:
            index = self._keys.host_instances(host, deleted)
            wanted = None if project_id is None else (lambda i: i.project_id == project_id)
        elif deleted:
            index = self._keys.instance_index()
            wanted = (lambda i: i.deleted and (project_id is None or i.project_id == project_id))
        else:
            index = (self._keys.live_instances() if project_id is None
                     else self._keys.project_instances(project_id))
            wanted = None
        below = None
        if marker is not None:
            below = self._score(index, marker)
            marked = self.get_instance(marker) if below is not None else None
            if marked is None or (wanted is not None and not wanted(marked)):
                raise MarkerNotFound(marker)

        def keep_it(inst: Instance) -> bool:
            return (wanted is None or wanted(inst)) and (keep is None or keep(inst))

        return self._page_of(Instance, index, self._keys.instance, limit, below=below,
                             keep=keep_it if (wanted is not None or keep is not None) else None)

    def rebuild_host_instance_index(self) -> int:
        """Fill ``host:{name}:instances`` and ``:deleted_instances`` from the records (a store written
        before they existed): O(servers), once; ``instances:by_host_built`` marks it done once it found
        servers (a store without any stays without keys; its first start with servers indexes them
        once more, harmlessly). Returns how many servers it indexed.

        Under WATCH of each chunk's records: a write that moves one of them discards that chunk, which
        runs again on the new records."""
        k = self._keys
        if self._client.exists(k.host_instances_built()):
            return 0
        members = self._client.zrange(k.instance_index(), 0, -1, withscores=True)
        if not members:
            return 0
        count = 0
        for start in range(0, len(members), 500):
            chunk = members[start:start + 500]

            def body(pipe: Any, chunk: list[tuple[str, float]] = chunk) -> int:
                raws = pipe.mget([k.instance(i) for i, _ in chunk])
                pipe.multi()
                indexed = 0
                for (inst_id, seq), raw in zip(chunk, raws):
                    inst = None if raw is None else Instance.model_validate_json(raw)
                    if inst is not None and inst.host:
                        pipe.zadd(k.host_instances(inst.host, inst.deleted), {inst_id: seq})
                        indexed += 1
                return indexed

            count += self._watched(body, *(k.instance(i) for i, _ in chunk))
        self._client.set(k.host_instances_built(), "1")
        return count

    def rebuild_instance_indexes(self) -> int:
        """Fill ``instances:live`` and ``project:{p}:instances`` from the records (a store written before
        they existed): O(servers), at start only when ``instances:live`` is missing. Returns how many."""
        live, index = self._keys.live_instances(), self._keys.instance_index()
        if self._client.exists(live) or not self._client.zcard(index):
            return 0
        members = self._client.zrange(index, 0, -1, withscores=True)
        count = 0
        for start in range(0, len(members), 500):
            chunk = members[start:start + 500]
            pipe = self._multi()
            for (inst_id, seq), raw in zip(chunk, self._client.mget([self._keys.instance(i) for i, _ in chunk])):
                if raw is None:
                    continue
                inst = Instance.model_validate_json(raw)
                if not inst.deleted:
                    pipe.zadd(live, {inst.id: seq})
                    pipe.zadd(self._keys.project_instances(inst.project_id), {inst.id: seq})
                    count += 1
            pipe.execute()
        return count

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
            self._queue_instance(pipe, inst, seq, before)
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

    def _queue_instance(self, pipe: Any, inst: Instance, seq: int, before: Instance | None = None) -> None:
        pipe.set(self._keys.instance(inst.id), inst.model_dump_json())
        pipe.zadd(self._keys.instance_index(), {inst.id: seq})
        self._queue_live_indexes(pipe, inst, seq, before)
        self._queue_host_move(pipe, inst.id, self._host_index_of(before), self._host_index_of(inst), seq)
        self._queue_status_change(pipe, counted_status(before), counted_status(inst))
        if before is None or (before.user_id, before.project_id) != (inst.user_id, inst.project_id):
            self._queue_identity(pipe, inst.user_id, inst.project_id)

    def _queue_status_change(self, pipe: Any, before: str | None, after: str | None) -> None:
        """One server leaves status ``before`` and enters ``after`` (None: not counted) in ``instances:status``."""
        if before == after:
            return
        key = self._keys.instance_status_counts()
        if before is not None:
            pipe.hincrby(key, before, -1)
        if after is not None:
            pipe.hincrby(key, after, 1)

    def _queue_live_indexes(self, pipe: Any, inst: Instance, seq: float | None, before: Instance | None) -> None:
        """A server is in ``instances:live`` and its project's index while it is not deleted."""
        if before is not None and before.project_id != inst.project_id:
            pipe.zrem(self._keys.project_instances(before.project_id), inst.id)
        if inst.deleted or seq is None:
            pipe.zrem(self._keys.live_instances(), inst.id)
            pipe.zrem(self._keys.project_instances(inst.project_id), inst.id)
        else:
            pipe.zadd(self._keys.live_instances(), {inst.id: seq})
            pipe.zadd(self._keys.project_instances(inst.project_id), {inst.id: seq})

    @staticmethod
    def _queue_host_move(pipe: Any, instance_id: str, left: str | None, entered: str | None,
                         seq: float | None) -> None:
        """A server is in ``host:{name}:instances`` (``:deleted_instances`` once deleted) of the host its
        record names, at its ``instances`` score: out of ``left``, into ``entered`` (None: none)."""
        if left is not None and left != entered:
            pipe.zrem(left, instance_id)
        if entered is not None and seq is not None:
            pipe.zadd(entered, {instance_id: seq})

    def _host_index_of(self, inst: Instance | None) -> str | None:
        """The host index listing ``inst`` (None for no record, or one on no host)."""
        return None if inst is None or not inst.host else self._keys.host_instances(inst.host, inst.deleted)

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
        known: Instance | None = None,
        seq: int | None = None,
    ) -> Instance:
        """Compare-and-set: ``mutate`` sees the current record and may raise to abort.

        An action record (and its flow run) passed here is written in the same MULTI,
        so a caller never sees a state change without the action that explains it;
        ``also(pipe)`` queues further writes into that MULTI (e.g. a backup's image).
        ``undoing`` puts back a state this process itself changed a moment ago, so the
        transition table (which lists forward moves) is not consulted.
        ``known``: the record as the caller last read or wrote it (left unchanged). A change that
        writes nothing else but the status count (no action, no ``also``, the same quota holding,
        ``deleted`` unchanged) is made on a copy and written only while the record is still exactly
        that, in one round trip (``SWAP_COUNTED``); else, or when the change refuses that copy, it
        is made on the record read afresh, so a refusal always comes from the stored record.
        ``seq``: the action's sequence number when the caller has taken it already.
        """
        key = self._keys.instance(instance_id)
        if known is not None and action is None and also is None:
            swapped = self._swap_known_instance(key, known, mutate, undoing)
            if swapped is not None:
                return swapped
        if action is None:
            seq = 0
        elif seq is None:
            seq = self.next_seq()

        def body(pipe: Any) -> Instance:
            # The record and its ``instances`` score in one round trip, after the WATCH (the score moves
            # only with the record): the score is what a host or ``deleted`` change re-indexes it at.
            reads = self._client.pipeline(transaction=False)
            reads.get(key)
            reads.zscore(self._keys.instance_index(), instance_id)
            raw, score = reads.execute()
            if raw is None:
                raise errors.InstanceNotFound(instance_id)
            inst = Instance.model_validate_json(raw)
            held, status_before = holding(inst), counted_status(inst)
            before, was_deleted, host_index = inst.task_state, inst.deleted, self._host_index_of(inst)
            mutate(inst)
            if not undoing:
                check_task_transition(before, inst.task_state)
            inst.updated_at = utcnow()
            moved = host_index != self._host_index_of(inst)
            seq_now = None if score is None else float(score)
            pipe.multi()
            pipe.set(key, inst.model_dump_json())
            if inst.deleted != was_deleted:
                self._queue_live_indexes(pipe, inst, seq_now, None)
            if moved:
                self._queue_host_move(pipe, inst.id, host_index, self._host_index_of(inst), seq_now)
            self._queue_usage_change(pipe, held, holding(inst))
            self._queue_status_change(pipe, status_before, counted_status(inst))
            if action is not None and run is not None:
                self._queue_action_and_run(pipe, action, run, due_in, seq)
            elif action is not None:
                self._queue_action(pipe, action, seq)
            if also is not None:
                also(pipe)
            return inst

        return self._transaction(body, key)

    def _swap_known_instance(self, key: str, known: Instance, mutate: Callable[[Instance], None],
                             undoing: bool) -> Instance | None:
        """``update_instance``'s one-round-trip path; None when it does not apply or the record moved on."""
        changed = self._changed_known_copy(known, mutate, undoing)
        if changed is None:
            return None
        raw, inst = changed
        before, after = counted_status(known), counted_status(inst)
        moved = before != after
        keys = [key, self._keys.instance_status_counts()]
        args = [raw, inst.model_dump_json(), (before or "") if moved else "", (after or "") if moved else ""]
        left, entered = self._host_index_of(known), self._host_index_of(inst)
        if left != entered:
            keys += [self._keys.instance_index(), *(i for i in (left, entered) if i is not None)]
            args += [inst.id, "1" if left is not None else "0"]
        swapped = self._script(SWAP_COUNTED)(keys=keys, args=args)
        return inst if swapped else None

    @staticmethod
    def _changed_known_copy(known: Instance, mutate: Callable[[Instance], None],
                            undoing: bool) -> tuple[str, Instance] | None:
        """``known`` as stored (its exact JSON) and a copy with ``mutate``'s change, checked and stamped;
        None when the change refuses the copy or moves what a one-script write does not (the
        quota holding, ``deleted``): the caller then decides on the record read afresh."""
        raw = known.model_dump_json()
        inst = Instance.model_validate_json(raw)
        try:
            mutate(inst)
            if not undoing:
                check_task_transition(known.task_state, inst.task_state)
        except Exception:  # noqa: BLE001 - the caller decides again on the stored record
            return None
        if inst.deleted != known.deleted or holding(inst) != holding(known):
            return None
        inst.updated_at = utcnow()
        return raw, inst

    def purge_instance_record(self, instance_id: str) -> None:
        """Undo of a create whose message could not be queued: the record, its index entry and the
        usage it held go together."""
        key = self._keys.instance(instance_id)

        def body(pipe: Any) -> None:
            before = self._load(Instance, key, pipe)
            pipe.multi()
            pipe.delete(key)
            pipe.zrem(self._keys.instance_index(), instance_id)
            pipe.zrem(self._keys.live_instances(), instance_id)
            if before is not None:
                pipe.zrem(self._keys.project_instances(before.project_id), instance_id)
                self._queue_host_move(pipe, instance_id, self._host_index_of(before), None, None)
            self._queue_usage_change(pipe, holding(before), None)
            self._queue_status_change(pipe, counted_status(before), None)

        self._watched(body, key)
