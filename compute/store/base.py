"""What every part of the store shares: the client, the keys, JSON loads and transactions."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from compute.store.keys import Keys

M = TypeVar("M")


def iso_to_epoch(value: str) -> float:
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC).timestamp()


class StoreBase:
    """The raw client is private: everything outside compute/store/ goes through methods."""

    def __init__(self, client: redis.Redis, prefix: str = "ca:", *, default_availability_zone: str = "nova") -> None:
        self._client = client
        self._keys = Keys(prefix)
        # Nova's [DEFAULT] default_availability_zone: the zone of a host no zoned aggregate holds.
        self.default_availability_zone = default_availability_zone

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

    def _delete_if_held(self, key: str, owner: str) -> None:
        """Delete a lock-like key only while ``owner`` holds it: another holder's stays."""
        def body(pipe: Any) -> None:
            holder = pipe.get(key)
            pipe.multi()
            if holder == owner:
                pipe.delete(key)

        self._transaction(body, key)

    def next_seq(self) -> int:
        return int(self._client.incr(self._keys.sequence()))

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
