"""An action's accept on the server record the API already read: every write in one script."""
from __future__ import annotations

import time
from collections.abc import Callable

from compute.models import FlowRun, Instance, InstanceAction, Migration
from compute.store.base import IDENTITY_SEPARATOR
from compute.store.instances import InstanceRecords, counted_status
from compute.store.migrations import MigrationRecords, in_progress

# Stands in for a number the script takes (an action's sequence number, a migration's id) in a
# record's JSON; the script writes the JSON before and after it around the number it took.
TAKEN_IN_SCRIPT = 7_300_000_000_000_000_017

# KEYS: the server's record, ``instances:status``, the sequence, the action, the server's actions,
# the run, ``runs:due``, ``identities``; with a new migration also the migration sequence, the
# migrations index, the server's migrations, the uuid -> id key, the project's migrations (when
# ARGV[15] is '1'), then the ``host:{name}:migrations`` sets.
# ARGV: the record it is expected to hold, its new value, the status it leaves and the one it
# enters ('' for none), the action's JSON before and after its sequence number, the request id,
# the run's JSON, its due epoch, up to two ``identities`` members ('' for none); with a new
# migration its JSON before and after its id, the key of a migration record without the id, and
# ARGV[15]. Writes nothing and returns false unless the record holds exactly ARGV[1]; else
# returns the sequence number and the migration id (0 without one).
ACCEPT_ON_KNOWN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[3], -1) end
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[4], 1) end
local seq = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[4], ARGV[5] .. seq .. ARGV[6])
redis.call('ZADD', KEYS[5], seq, ARGV[7])
redis.call('SET', KEYS[6], ARGV[8])
redis.call('ZADD', KEYS[7], ARGV[9], ARGV[7])
for i = 10, 11 do
  if ARGV[i] ~= '' then redis.call('SADD', KEYS[8], ARGV[i]) end
end
if #KEYS == 8 then return {seq, 0} end
local id = redis.call('INCR', KEYS[9])
redis.call('SET', ARGV[14] .. id, ARGV[12] .. id .. ARGV[13])
redis.call('ZADD', KEYS[10], id, id)
redis.call('ZADD', KEYS[11], id, id)
redis.call('SET', KEYS[12], id)
local hosts = 13
if ARGV[15] == '1' then
  redis.call('ZADD', KEYS[13], id, id)
  hosts = 14
end
for i = hosts, #KEYS do redis.call('SADD', KEYS[i], id) end
return {seq, id}
"""


def identity_member(user_id: str | None, project_id: str | None) -> str:
    """The ``identities`` member of a record naming this user and project ('' when it names neither)."""
    return f"{user_id or ''}{IDENTITY_SEPARATOR}{project_id or ''}" if (user_id or project_id) else ""


def around_taken_number(json: str) -> tuple[str, str] | None:
    """A record's JSON before and after its ``TAKEN_IN_SCRIPT``; None unless it holds it exactly once."""
    marker = str(TAKEN_IN_SCRIPT)
    if json.count(marker) != 1:
        return None
    head, _, tail = json.partition(marker)
    return head, tail


class AcceptRecords(InstanceRecords, MigrationRecords):
    def accept_on_known(self, known: Instance, mutate: Callable[[Instance], None], action: InstanceAction,
                        run: FlowRun, due_in: float, new_migration: Migration | None = None) -> Instance | None:
        """An action's accept made on ``known`` (the server as the caller read it, left unchanged) in
        one round trip: the record's compare-and-set against the exact JSON read, its status count,
        the action with its sequence number, its flow run, and ``new_migration`` (given its id) with
        its indexes, all written by one script, or none of them.

        None, having written nothing, when the change refuses the copy or is one the script does not
        write (``_changed_known_copy``, or a move of the server's host index), or the record moved on
        since it was read: the caller then makes the accept on the record read afresh
        (``update_instance``), so a refusal, and a race between two accepts, are decided on the stored
        record.
        """
        changed = self._changed_known_copy(known, mutate, False)
        if changed is None:
            return None
        raw, inst = changed
        if self._host_index_of(known) != self._host_index_of(inst):
            return None  # the script keeps no host index: the record's MULTI moves it
        k = self._keys
        action.seq = TAKEN_IN_SCRIPT
        action_json = around_taken_number(action.model_dump_json())
        action.seq = 0
        if action_json is None:
            return None
        before, after = counted_status(known), counted_status(inst)
        moved = before != after
        keys = [k.instance(inst.id), k.instance_status_counts(), k.sequence(), k.action(action.request_id),
                k.instance_actions(inst.id), k.run(run.request_id), k.runs_due(), k.identities()]
        args = [raw, inst.model_dump_json(), (before or "") if moved else "", (after or "") if moved else "",
                *action_json, action.request_id, run.model_dump_json(), repr(time.time() + due_in),
                identity_member(action.user_id, action.project_id)]
        if new_migration is None:
            args.append("")
        else:
            migration_args = self._new_migration_script_args(new_migration, keys)
            if migration_args is None:
                return None
            args.extend(migration_args)
        taken = self._script(ACCEPT_ON_KNOWN)(keys=keys, args=args)
        if not taken:
            return None
        action.seq = int(taken[0])
        if new_migration is not None:
            new_migration.id = int(taken[1])
        return inst

    def _new_migration_script_args(self, migration: Migration, keys: list[str]) -> list[str] | None:
        """``ACCEPT_ON_KNOWN``'s migration keys (appended to ``keys``) and its ARGV from the 11th."""
        k = self._keys
        taken_id = migration.id
        migration.id = TAKEN_IN_SCRIPT
        record_json = around_taken_number(migration.model_dump_json())
        hosts = self._host_migration_keys(migration) if in_progress(migration) else []
        migration.id = taken_id
        if record_json is None:
            return None
        keys += [k.migration_sequence(), k.migration_index(), k.instance_migrations(migration.instance_uuid),
                 k.migration_by_uuid(migration.uuid)]
        if migration.project_id:
            keys.append(k.project_migrations(migration.project_id))
        keys += hosts
        record_key = k.migration(TAKEN_IN_SCRIPT)
        return [identity_member(migration.user_id, migration.project_id), *record_json,
                record_key[:-len(str(TAKEN_IN_SCRIPT))], "1" if migration.project_id else ""]
