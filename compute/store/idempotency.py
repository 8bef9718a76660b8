"""Idempotency-Key records: a reservation taken with SET NX, then the first answer, replayed until it expires.

Only the holder of a reservation (its ``token``) may turn it into an answer or give it
back, so a request whose reservation expired cannot overwrite the one that took its place.
"""
from __future__ import annotations

from typing import Any

from compute.models import IdempotencyRecord
from compute.store.base import StoreBase


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class IdempotencyRecords(StoreBase):
    def reserve_idempotency_key(self, digest: str, record: IdempotencyRecord,
                                ttl_seconds: float) -> IdempotencyRecord | None:
        """Take the key for ``record`` (None) or return the record already holding it."""
        key = self._keys.idempotency(digest)
        while True:
            if self._client.set(key, record.model_dump_json(), nx=True, px=_ms(ttl_seconds)):
                return None
            found = self._load(IdempotencyRecord, key)
            if found is not None:
                return found
            # It expired between the SET and the GET: try to take it again.

    def get_idempotency_record(self, digest: str) -> IdempotencyRecord | None:
        return self._load(IdempotencyRecord, self._keys.idempotency(digest))

    def idempotency_key_ttl(self, digest: str) -> float | None:
        """Seconds before the record expires (None when there is none)."""
        ms = int(self._client.pttl(self._keys.idempotency(digest)))
        return None if ms < 0 else ms / 1000

    def finish_idempotency_key(self, digest: str, record: IdempotencyRecord, ttl_seconds: float) -> bool:
        """Store the answer over the reservation with the same token; False if it is no longer ours."""
        key = self._keys.idempotency(digest)

        def body(pipe: Any) -> bool:
            current = self._load(IdempotencyRecord, key, pipe)
            pipe.multi()
            if current is None or current.token != record.token:
                return False
            pipe.set(key, record.model_dump_json(), px=_ms(ttl_seconds))
            return True

        return bool(self._transaction(body, key))

    def release_idempotency_key(self, digest: str, token: str) -> bool:
        """Give a reservation back (the answer was not one to keep); False if it is no longer ours."""
        key = self._keys.idempotency(digest)

        def body(pipe: Any) -> bool:
            current = self._load(IdempotencyRecord, key, pipe)
            pipe.multi()
            if current is None or current.token != token:
                return False
            pipe.delete(key)
            return True

        return bool(self._transaction(body, key))
