"""Migration records (os-migrations, live and cold), each status move checked against the table."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compute import errors
from compute.models import Migration, utcnow
from compute.states import check_migration_transition
from compute.store.base import StoreBase


class MigrationRecords(StoreBase):
    def create_migration(self, migration: Migration, pipe: Any = None) -> Migration:
        """Assign the next id and write the record; with ``pipe`` the write joins the caller's MULTI."""
        migration.id = int(self._client.incr(self._keys.migration_sequence()))
        own = pipe is None
        pipe = self._multi() if own else pipe
        member = str(migration.id)
        pipe.set(self._keys.migration(migration.id), migration.model_dump_json())
        pipe.zadd(self._keys.migration_index(), {member: migration.id})
        pipe.zadd(self._keys.instance_migrations(migration.instance_uuid), {member: migration.id})
        pipe.set(self._keys.migration_by_uuid(migration.uuid), migration.id)
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

    def overwrite_migration(self, migration: Migration) -> None:
        """Write a migration record exactly as given: no transition check, no ``updated_at`` stamp.

        For fixtures that need chosen timestamps; flows use :meth:`update_migration`.
        """
        self._client.set(self._keys.migration(migration.id), migration.model_dump_json())

    def get_migration(self, migration_id: int | str) -> Migration | None:
        return self._load(Migration, self._keys.migration(migration_id))

    def get_migration_by_uuid(self, migration_uuid: str) -> Migration | None:
        migration_id = self._client.get(self._keys.migration_by_uuid(migration_uuid))
        return None if migration_id is None else self.get_migration(migration_id)

    def list_migrations(self, instance_uuid: str | None = None) -> list[Migration]:
        """Newest first (created_at desc, id desc in Nova)."""
        index = (self._keys.migration_index() if instance_uuid is None
                 else self._keys.instance_migrations(instance_uuid))
        ids = self._client.zrevrange(index, 0, -1)
        return self._load_many(Migration, (self._keys.migration(i) for i in ids))

    def update_migration(self, migration_id: int | str, mutate: Callable[[Migration], None]) -> Migration:
        """Compare-and-set on one migration record; ``mutate`` may raise to abort.

        The status move ``mutate`` makes is checked against the migration transition table.
        """
        key = self._keys.migration(migration_id)

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
            return migration

        return self._transaction(body, key)
