"""What every part of the store shares: the client, the keys, JSON loads and transactions."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from compute.store.keys import Keys

M = TypeVar("M")
# Between the user and the project of an ``identities`` member (neither a dev token's name nor an id holds it).
IDENTITY_SEPARATOR = "\t"

# KEYS: a lock-like key. ARGV: its owner. Deletes it only while that owner holds it.
DELETE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: a record. ARGV: the value it is expected to hold, its new value. Sets it only while it holds that.
SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
"""


def iso_to_epoch(value: str) -> float:
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).timestamp()


class MarkerNotFound(LookupError):
    """A list's marker names no record of the index it pages (each view answers its own 400)."""

    def __init__(self, marker: str) -> None:
        super().__init__(marker)
        self.marker = marker


class StoreBase:
    """The raw client is private: everything outside compute/store/ goes through methods."""

    def __init__(self, client: redis.Redis, prefix: str = "ca:", *, default_availability_zone: str = "nova",
                 service_down_time: float = 60.0) -> None:
        self._client = client
        self._keys = Keys(prefix)
        # Nova's [DEFAULT] default_availability_zone: the zone of a host no zoned aggregate holds.
        self.default_availability_zone = default_availability_zone
        # Nova's [DEFAULT] service_down_time: a compute whose last report is older is down.
        self.service_down_time = service_down_time
        # Lua source -> the client's registered script (``_script``).
        self._scripts: dict[str, Any] = {}

    @property
    def prefix(self) -> str:
        return self._keys.prefix

    def close(self) -> None:
        self._client.close()

    def _load(self, model: type[M], key: str, client: Any = None) -> M | None:
        raw = (self._client if client is None else client).get(key)
        return None if raw is None else model.model_validate_json(raw)  # type: ignore[attr-defined]

    def _load_many(self, model: type[M], keys: Iterable[str]) -> list[M]:
        keys = list(keys)
        if not keys:
            return []
        return [model.model_validate_json(raw) for raw in self._client.mget(keys) if raw is not None]  # type: ignore[attr-defined]

    def _multi(self) -> Any:
        """A MULTI/EXEC pipeline: the queued writes apply all together or not at all."""
        return self._client.pipeline(transaction=True)

    def _transaction(self, body: Callable[[Any], Any], *watch: str) -> Any:
        """Run ``body(pipe)`` under WATCH until it commits; ``body`` calls ``pipe.multi()``."""
        return self._client.transaction(body, *watch, value_from_callable=True)

    def _script(self, source: str) -> Any:
        """A Lua script on this client, registered once (EVALSHA; the script is sent only the first
        time a server does not know it): for a check-and-write that must cost one round trip."""
        if source not in self._scripts:
            self._scripts[source] = self._client.register_script(source)
        return self._scripts[source]

    def _swap(self, key: str, expected: str, new: str) -> bool:
        """Set ``key`` to ``new`` only while it holds exactly ``expected``: a compare-and-set of one
        record in one round trip, for a caller that already holds the record as it last read it."""
        return bool(self._script(SWAP)(keys=[key], args=[expected, new]))

    def _delete_if_held(self, key: str, owner: str) -> None:
        """Delete a lock-like key only while ``owner`` holds it: another holder's stays."""
        self._script(DELETE_IF_HELD)(keys=[key], args=[owner])

    def _page_of(self, model: type[M], index: str, record_key: Callable[[str], str], limit: int, *,
                 below: float | None = None, keep: Callable[[M], bool] | None = None) -> list[M]:
        """Up to ``limit`` records of ``index``, highest score first, scoring under ``below`` (a marker's
        score; None: from the top), those ``keep`` refuses skipped.

        Reads the index in chunks (the page's size, then twice as much each time) with one MGET per
        chunk: without ``keep``, exactly the page; with it, as far as the page takes to fill.
        """
        if limit <= 0:
            return []
        found: list[M] = []
        top = "+inf" if below is None else f"({below!r}"
        chunk = max(limit, 16)
        while len(found) < limit:
            members = self._client.zrevrangebyscore(index, top, "-inf", start=0, num=chunk, withscores=True)
            if not members:
                break
            raws = self._client.mget([record_key(m) for m, _ in members])
            for raw in raws:
                if raw is None:
                    continue
                record = model.model_validate_json(raw)  # type: ignore[attr-defined]
                if keep is None or keep(record):
                    found.append(record)
                    if len(found) == limit:
                        break
            if len(members) < chunk:
                break
            top = f"({members[-1][1]!r}"
            chunk = min(chunk * 2, 2000)
        return found

    def _score(self, index: str, member: str) -> float | None:
        found = self._client.zscore(index, member)
        return None if found is None else float(found)

    def next_seq(self) -> int:
        return int(self._client.incr(self._keys.sequence()))

    # ---- who the records name (the dev identity directory, compute/directory.py) ----------------
    def _queue_identity(self, pipe: Any, user_id: str | None, project_id: str | None) -> None:
        """Note the user and project a record being written names, in that record's MULTI."""
        if user_id or project_id:
            pipe.sadd(self._keys.identities(), f"{user_id or ''}{IDENTITY_SEPARATOR}{project_id or ''}")

    def identities(self) -> list[tuple[str | None, str | None]]:
        """Every (user, project) the records have named (either may be None): one read, O(those pairs)."""
        pairs = (m.partition(IDENTITY_SEPARATOR) for m in self._client.smembers(self._keys.identities()))
        found = sorted((user, project) for user, _, project in pairs if user or project)
        return [(user or None, project or None) for user, project in found]

    def rebuild_identities(self) -> int:
        """Fill ``identities`` from every server, its actions, every migration and image, when it is missing
        (a store written before it existed): O(history) once, at start; O(1) to check. The empty pair it adds
        marks it done even when no record names anyone."""
        k = self._keys
        if self._client.exists(k.identities()) or not any(
                self._client.zcard(index) for index in (k.instance_index(), k.migration_index(), k.image_index())):
            return 0
        pairs = {("", "")}
        for inst in self.list_instances():  # type: ignore[attr-defined]
            pairs.add((inst.user_id, inst.project_id))
            pairs.update((a.user_id, a.project_id) for a in self.list_actions(inst.id))  # type: ignore[attr-defined]
        pairs.update((m.user_id, m.project_id) for m in self.list_migrations())  # type: ignore[attr-defined]
        pairs.update((i.properties.get("user_id"), i.owner) for i in self.list_images())  # type: ignore[attr-defined]
        self._client.sadd(k.identities(), *{f"{u or ''}{IDENTITY_SEPARATOR}{p or ''}" for u, p in pairs})
        return len(pairs) - 1

    # ---- the whole namespace (test cleanup, bench figures) -----------------------------------
    def scan_keys(self, glob: str = "*") -> list[str]:
        """Every key of this store whose name after the prefix matches ``glob``."""
        return self._scan(self._keys.pattern(glob))

    def _scan(self, match: str) -> list[str]:
        return list(self._client.scan_iter(match=match, count=1000))

    def count_keys(self, glob: str = "*") -> int:
        return len(self.scan_keys(glob))

    def delete_all(self) -> int:
        """Delete every key under this store's prefix; returns how many there were."""
        found = self.scan_keys()
        for start in range(0, len(found), 500):
            self._client.delete(*found[start:start + 500])
        return len(found)
