"""Quota limits (project, user and class overrides) and the usage counters they are checked against.

The usage counters (``usage:{project}``, ``usage:{project}:user:{user}``) hold what the
servers that are not deleted take: instances, cores, ram. They are written only in the
MULTI that writes a server record (compute/store/instances.py), so they always equal a
count of the records; a create reads them, and the limits, under the same WATCH as its
write (``quota_snapshot``), so concurrent creates cannot pass a limit between them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from compute.models import Instance, QuotaSnapshot
from compute.store.base import StoreBase

DEFAULT_CLASS = "default"


def _ints(raw: Mapping[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in raw.items()}


# (project, user, {resource: amount}) that a server record holds against its quotas.
Holding = tuple[str, str, dict[str, int]]


def holding(inst: Instance | None) -> Holding | None:
    """What a server record holds against its project's (and user's) quota: nothing once deleted."""
    if inst is None or inst.deleted:
        return None
    return inst.project_id, inst.user_id, {"instances": 1, "cores": inst.flavor.vcpus, "ram": inst.flavor.ram}


class QuotaRecords(StoreBase):
    # ---- reads ---------------------------------------------------------------------------------
    def _quota_watch_keys(self, project_id: str, user_id: str | None) -> list[str]:
        found = [self._keys.quota_class(DEFAULT_CLASS), self._keys.project_quotas(project_id),
                 self._keys.project_usage(project_id)]
        if user_id is not None:
            found += [self._keys.user_quotas(project_id, user_id), self._keys.user_usage(project_id, user_id)]
        return found

    def _read_quota_snapshot(self, client: Any, project_id: str, user_id: str | None,
                             *, user_sums: bool = False) -> QuotaSnapshot:
        """Read with ``client``: the store's client (every hash in one pipelined round trip), or a
        pipeline in WATCH mode (then every key read is watched, one round trip each)."""
        keys = self._quota_watch_keys(project_id, user_id)
        if client is self._client:
            reads = client.pipeline(transaction=False)
            for key in keys:
                reads.hgetall(key)
            hashes = [_ints(raw) for raw in reads.execute()]
        else:
            hashes = [_ints(client.hgetall(key)) for key in keys]
        snap = QuotaSnapshot(class_limits=hashes[0], project_limits=hashes[1], project_usage=hashes[2])
        if user_id is not None:
            snap.user_limits, snap.user_usage = hashes[3], hashes[4]
        if user_sums:
            users = sorted(client.smembers(self._keys.quota_users(project_id)))
            keys = [self._keys.user_quotas(project_id, u) for u in users]
            if keys and hasattr(client, "watch") and getattr(client, "watching", False):
                client.watch(*keys)
            sums: dict[str, int] = {}
            for key in keys:
                for resource, limit in _ints(client.hgetall(key)).items():
                    sums[resource] = sums.get(resource, 0) + limit
            snap.user_limit_sums = sums
        return snap

    def quota_snapshot(self, project_id: str, user_id: str | None = None, *, user_sums: bool = False) -> QuotaSnapshot:
        """The limits and usage of a project (and user), for reads; checks that must hold use the WATCHed forms."""
        def body(pipe: Any) -> QuotaSnapshot:
            snap = self._read_quota_snapshot(pipe, project_id, user_id, user_sums=user_sums)
            pipe.multi()
            return snap

        if not user_sums:
            return self._read_quota_snapshot(self._client, project_id, user_id)
        return self._transaction(body, *self._quota_watch_keys(project_id, user_id),
                                 self._keys.quota_users(project_id))

    def class_quota_overrides(self, quota_class: str) -> dict[str, int]:
        return _ints(self._client.hgetall(self._keys.quota_class(quota_class)))

    # ---- writes --------------------------------------------------------------------------------
    def update_quotas(self, project_id: str, user_id: str | None, values: Mapping[str, int],
                      validate: Callable[[QuotaSnapshot], None]) -> QuotaSnapshot:
        """Set overrides for the project (or one of its users) if ``validate`` passes on the current
        limits and usage, read under WATCH: a create that raises the usage meanwhile makes it retry."""
        target = self._keys.project_quotas(project_id) if user_id is None else self._keys.user_quotas(project_id, user_id)

        def body(pipe: Any) -> QuotaSnapshot:
            snap = self._read_quota_snapshot(pipe, project_id, user_id, user_sums=True)
            validate(snap)
            pipe.multi()
            if values:
                pipe.hset(target, mapping={k: int(v) for k, v in values.items()})
                if user_id is not None:
                    pipe.sadd(self._keys.quota_users(project_id), user_id)
            return snap

        self._transaction(body, *self._quota_watch_keys(project_id, user_id), self._keys.quota_users(project_id))
        return self.quota_snapshot(project_id, user_id)

    def delete_quotas(self, project_id: str, user_id: str | None = None) -> None:
        """Back to the defaults: a user's overrides, or the project's and all its users' (Nova's
        ``destroy_all_by_project``)."""
        users_key = self._keys.quota_users(project_id)

        def body(pipe: Any) -> None:
            users = [user_id] if user_id is not None else sorted(pipe.smembers(users_key))
            pipe.multi()
            for user in users:
                pipe.delete(self._keys.user_quotas(project_id, user))
                pipe.srem(users_key, user)
            if user_id is None:
                pipe.delete(self._keys.project_quotas(project_id))

        self._transaction(body, users_key)

    def update_class_quotas(self, quota_class: str, values: Mapping[str, int]) -> dict[str, int]:
        if values:
            self._client.hset(self._keys.quota_class(quota_class), mapping={k: int(v) for k, v in values.items()})
        return self.class_quota_overrides(quota_class)

    # ---- the counters, queued into a server record's MULTI ------------------------------------
    def _queue_usage(self, pipe: Any, held: Holding, sign: int) -> None:
        project_id, user_id, amounts = held
        keys = [self._keys.project_usage(project_id)] if project_id else []
        if project_id and user_id:
            keys.append(self._keys.user_usage(project_id, user_id))
        for key in keys:
            for resource, amount in amounts.items():
                pipe.hincrby(key, resource, sign * amount)

    def _queue_usage_change(self, pipe: Any, before: Holding | None, after: Holding | None) -> None:
        """Move the counters from what a record held to what it holds now (None: nothing)."""
        if before == after:
            return
        if before is not None:
            self._queue_usage(pipe, before, -1)
        if after is not None:
            self._queue_usage(pipe, after, +1)
