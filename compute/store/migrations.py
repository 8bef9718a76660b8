"""Migration records (os-migrations, live and cold), each status move checked against the table."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compute import errors
from compute.models import Migration, utcnow
from compute.states import check_migration_transition
from compute.store.base import MarkerNotFound, StoreBase

# nova/db/main/api.py migration_get_in_progress_by_host_and_node: every status but these is in progress.
MIGRATION_OVER = frozenset({"confirmed", "reverted", "error", "failed", "completed", "cancelled", "done"})

# KEYS: the record, then ``host:{name}:migrations`` sets. ARGV: the value the record is expected to hold,
# its new value, the migration id, how many of the sets (the first ones) gain the id; the rest lose it.
SWAP_INDEXED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local adds = tonumber(ARGV[4])
for i = 2, #KEYS do
  if i - 1 <= adds then redis.call('SADD', KEYS[i], ARGV[3]) else redis.call('SREM', KEYS[i], ARGV[3]) end
end
return 1
"""


def in_progress(migration: Migration) -> bool:
    return migration.status not in MIGRATION_OVER


# KEYS: the record, the migrations index, the server's migrations, the uuid -> id key, then the
# project's migrations when it has a project. ARGV: the record's JSON, its id. One command in the
# caller's MULTI instead of five (EVAL, not EVALSHA: a script missing after a restart would fail
# alone inside the MULTI while the other writes went through).
CREATE_MIGRATION = """
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #KEYS do
  if i ~= 4 then redis.call('ZADD', KEYS[i], ARGV[2], ARGV[2]) end
end
redis.call('SET', KEYS[4], ARGV[2])
return 1
"""


class MigrationRecords(StoreBase):
    def reserve_migration_id(self, migration: Migration) -> int:
        """Give a new migration its id and take the sequence number of the action that creates it,
        both in one round trip; ``create_migration`` then writes the record under that id."""
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(self._keys.migration_sequence())
        pipe.incr(self._keys.sequence())
        migration_id, seq = pipe.execute()
        migration.id = int(migration_id)
        return int(seq)

    # ---- the per-host index of migrations in progress -------------------------------------------------
    def _host_migration_keys(self, migration: Migration) -> list[str]:
        return [self._keys.host_migrations(h) for h in sorted({migration.source_compute, migration.dest_compute} - {None})]

    def _queue_host_migrations(self, pipe: Any, migration: Migration) -> None:
        """With every write of a migration record: listed under its hosts while in progress, unlisted once over."""
        for key in self._host_migration_keys(migration):
            (pipe.sadd if in_progress(migration) else pipe.srem)(key, str(migration.id))

    def _swap_migration(self, key: str, expected: str, changed: Migration) -> bool:
        """``_swap`` of the record with its ``host:{name}:migrations`` moves, in one script (one round trip)."""
        hosts = self._host_migration_keys(changed)
        adds = len(hosts) if in_progress(changed) else 0
        return bool(self._script(SWAP_INDEXED)(keys=[key, *hosts],
                                               args=[expected, changed.model_dump_json(), str(changed.id), adds]))

    def migrations_in_progress_on(self, host: str) -> list[Migration]:
        """The host's migrations in progress (source or destination): its index's records, confirmed;
        O(those migrations), never the history."""
        ids = sorted(self._client.smembers(self._keys.host_migrations(host)), key=int)
        return [m for m in self._load_many(Migration, (self._keys.migration(i) for i in ids))
                if in_progress(m) and host in (m.source_compute, m.dest_compute)]

    def rebuild_host_migration_index(self) -> int:
        """Fill ``host:{name}:migrations`` from every record (a store written before it existed): run with
        ``rebuild_listing_indexes``, O(migrations) once. Returns how many migrations were in progress."""
        found = [m for m in self.list_migrations() if in_progress(m)]
        if found:
            pipe = self._multi()
            for migration in found:
                self._queue_host_migrations(pipe, migration)
            pipe.execute()
        return len(found)

    def create_migration(self, migration: Migration, pipe: Any = None) -> Migration:
        """Assign the next id (unless ``reserve_migration_id`` gave it one) and write the record; with
        ``pipe`` the write joins the caller's MULTI."""
        if not migration.id:
            migration.id = int(self._client.incr(self._keys.migration_sequence()))
        own = pipe is None
        pipe = self._multi() if own else pipe
        keys = [self._keys.migration(migration.id), self._keys.migration_index(),
                self._keys.instance_migrations(migration.instance_uuid), self._keys.migration_by_uuid(migration.uuid)]
        if migration.project_id:
            keys.append(self._keys.project_migrations(migration.project_id))
        pipe.eval(CREATE_MIGRATION, len(keys), *keys, migration.model_dump_json(), migration.id)
        self._queue_host_migrations(pipe, migration)
        self._queue_identity(pipe, migration.user_id, migration.project_id)
        if own:
            pipe.execute()
        return migration

    def put_migration(self, migration: Migration, pipe: Any, *, previous_status: str | None = None) -> None:
        """Queue an existing migration's new state into the caller's MULTI.

        With ``previous_status`` (the status the caller read) the move to ``migration.status``
        is checked first, and a refused move raises before anything is queued.
        """
        if previous_status is not None:
            check_migration_transition(previous_status, migration.status)
        migration.updated_at = utcnow()
        pipe.set(self._keys.migration(migration.id), migration.model_dump_json())
        self._queue_host_migrations(pipe, migration)

    def overwrite_migration(self, migration: Migration) -> None:
        """Write a migration record exactly as given: no transition check, no ``updated_at`` stamp.

        For fixtures that need chosen timestamps; flows use :meth:`update_migration`.
        """
        pipe = self._multi()
        pipe.set(self._keys.migration(migration.id), migration.model_dump_json())
        self._queue_host_migrations(pipe, migration)
        pipe.execute()

    def get_migration(self, migration_id: int | str) -> Migration | None:
        return self._load(Migration, self._keys.migration(migration_id))

    def get_migration_by_uuid(self, migration_uuid: str) -> Migration | None:
        migration_id = self._client.get(self._keys.migration_by_uuid(migration_uuid))
        return None if migration_id is None else self.get_migration(migration_id)

    def list_migrations(self, instance_uuid: str | None = None, limit: int | None = None) -> list[Migration]:
        """Newest first (created_at desc, id desc in Nova; ids are handed out in creation order);
        ``limit``: only that many (the newest), read from the index's head."""
        index = (self._keys.migration_index() if instance_uuid is None
                 else self._keys.instance_migrations(instance_uuid))
        ids = self._client.zrevrange(index, 0, -1 if limit is None else limit - 1)
        return self._load_many(Migration, (self._keys.migration(i) for i in ids))

    def newest_migration_id(self, instance_uuid: str) -> int | None:
        """The id of a server's newest migration (its index's head), without reading the record."""
        head = self._client.zrevrange(self._keys.instance_migrations(instance_uuid), 0, 0)
        return int(head[0]) if head else None

    def page_migrations(self, limit: int, *, project_id: str | None = None, marker: str | None = None,
                        keep: Callable[[Migration], bool] | None = None) -> list[Migration]:
        """One page of migrations, newest first, from ``migrations`` (every project's) or
        ``project:{p}:migrations``; ``marker`` is a migration uuid of that index (else MarkerNotFound)."""
        index = self._keys.migration_index() if project_id is None else self._keys.project_migrations(project_id)
        below = None
        if marker is not None:
            found = self._client.get(self._keys.migration_by_uuid(marker))
            below = None if found is None else self._score(index, found)
            if below is None:
                raise MarkerNotFound(marker)
        return self._page_of(Migration, index, self._keys.migration, limit, below=below, keep=keep)

    def rebuild_migration_indexes(self) -> int:
        """Fill ``project:{p}:migrations`` from the records when the newest migration's project has no
        index (a store written before it existed): O(migrations) then, O(1) to check. Returns how many."""
        newest = self.list_migrations(limit=1)
        if not newest or not newest[0].project_id or \
                self._client.exists(self._keys.project_migrations(newest[0].project_id)):
            return 0
        found = self.list_migrations()
        pipe = self._multi()
        for migration in found:
            if migration.project_id:
                pipe.zadd(self._keys.project_migrations(migration.project_id), {str(migration.id): migration.id})
        pipe.execute()
        return len(found)

    def update_migration(self, migration_id: int | str, mutate: Callable[[Migration], None], *,
                         known: Migration | None = None) -> Migration:
        """Compare-and-set on one migration record; ``mutate`` may raise to abort.

        The status move ``mutate`` makes is checked against the migration transition table.
        ``known``: the record as the caller last read or wrote it (left unchanged): the change is
        made on a copy and written only while the record is still exactly that (one round trip);
        else, or when the change refuses that copy, it is made on the record read afresh, so a
        refusal always comes from the stored record.
        """
        key = self._keys.migration(migration_id)
        if known is not None:
            raw = known.model_dump_json()
            changed = changed_copy(raw, mutate)
            if changed is not None and self._swap_migration(key, raw, changed):
                return changed

        def body(pipe: Any) -> Migration:
            migration = self._load(Migration, key, pipe)
            if migration is None:
                raise errors.NotFound(f"Migration {migration_id} could not be found.")
            before = migration.status
            mutate(migration)
            check_migration_transition(before, migration.status)
            migration.updated_at = utcnow()
            pipe.multi()
            pipe.set(key, migration.model_dump_json())
            self._queue_host_migrations(pipe, migration)
            return migration

        return self._transaction(body, key)


def changed_copy(raw: str, mutate: Callable[[Migration], None]) -> Migration | None:
    """The migration ``raw`` with ``mutate``'s change, checked and stamped; None when it refuses it."""
    migration = Migration.model_validate_json(raw)
    before = migration.status
    try:
        mutate(migration)
        check_migration_transition(before, migration.status)
    except Exception:  # noqa: BLE001 - the caller decides again on the stored record
        return None
    migration.updated_at = utcnow()
    return migration
