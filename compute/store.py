"""The Redis store: every record, every compare-and-set, every claim.

Records are JSON strings under one key prefix. Anything that must not race (task_state
changes, host claims, a step's commit, the lease) is a WATCH/MULTI transaction, so the
same code runs on real Redis and on fakeredis. Later features extend this class.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from compute import errors
from compute.models import (
    ActionEvent,
    Flavor,
    FlowRun,
    Host,
    HostUsage,
    Image,
    Instance,
    InstanceAction,
    Migration,
    utcnow,
)
from compute.states import check_task_transition

M = TypeVar("M")


def iso_to_epoch(value: str) -> float:
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc).timestamp()


class Store:
    def __init__(self, client: redis.Redis, prefix: str = "ca:") -> None:
        self.r = client
        self.p = prefix

    # ---- keys --------------------------------------------------------------------------
    def k(self, *parts: str) -> str:
        return self.p + ":".join(parts)

    # ---- generic JSON records -------------------------------------------------------------
    def _load(self, model: type[M], key: str, client: Any = None) -> M | None:
        raw = (client or self.r).get(key)
        return None if raw is None else model.model_validate_json(raw)  # type: ignore[attr-defined]

    def _load_many(self, model: type[M], keys: Iterable[str]) -> list[M]:
        keys = list(keys)
        if not keys:
            return []
        return [model.model_validate_json(raw) for raw in self.r.mget(keys) if raw is not None]  # type: ignore[attr-defined]

    def next_seq(self) -> int:
        return int(self.r.incr(self.k("seq")))

    def _transaction(self, body: Callable[[Any], Any], *watch: str) -> Any:
        """Run ``body(pipe)`` under WATCH until it commits; ``body`` calls ``pipe.multi()``."""
        return self.r.transaction(body, *watch, value_from_callable=True)

    # ---- instances ----------------------------------------------------------------------
    def get_instance(self, instance_id: str) -> Instance | None:
        return self._load(Instance, self.k("instance", instance_id))

    def list_instances(self) -> list[Instance]:
        ids = self.r.zrange(self.k("instances"), 0, -1)
        return self._load_many(Instance, (self.k("instance", i) for i in ids))

    def create_instance(self, inst: Instance, action: InstanceAction, run: FlowRun, due_in: float) -> None:
        seq = self.next_seq()
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.k("instance", inst.id), inst.model_dump_json())
        pipe.zadd(self.k("instances"), {inst.id: seq})
        self._queue_action_and_run(pipe, action, run, due_in, seq)
        pipe.execute()

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
        key = self.k("instance", instance_id)
        seq = self.next_seq() if action is not None else 0

        def body(pipe: Any) -> Instance:
            inst = self._load(Instance, key, pipe)
            if inst is None:
                raise errors.InstanceNotFound(instance_id)
            before = inst.task_state
            mutate(inst)
            if not undoing:
                check_task_transition(before, inst.task_state)
            inst.updated_at = utcnow()
            pipe.multi()
            pipe.set(key, inst.model_dump_json())
            if action is not None and run is not None:
                self._queue_action_and_run(pipe, action, run, due_in, seq)
            elif action is not None:
                self._queue_action(pipe, action, seq)
            if also is not None:
                also(pipe)
            return inst

        return self._transaction(body, key)

    def purge_instance_record(self, instance_id: str) -> None:
        """Undo of a create whose message could not be queued."""
        self.r.delete(self.k("instance", instance_id))
        self.r.zrem(self.k("instances"), instance_id)

    # ---- hosts and claims -----------------------------------------------------------------
    def put_host(self, host: Host) -> None:
        self.r.set(self.k("host", host.name), host.model_dump_json())
        self.r.sadd(self.k("hosts"), host.name)

    def get_host(self, name: str) -> Host | None:
        return self._load(Host, self.k("host", name))

    def list_hosts(self) -> list[Host]:
        names = sorted(self.r.smembers(self.k("hosts")))
        return self._load_many(Host, (self.k("host", n) for n in names))

    def update_host(self, name: str, **changes: Any) -> Host:
        key = self.k("host", name)

        def body(pipe: Any) -> Host:
            host = self._load(Host, key, pipe)
            if host is None:
                raise errors.NotFound(f"Compute host {name} could not be found.")
            updated = host.model_copy(update={**changes, "updated_at": utcnow()})
            pipe.multi()
            pipe.set(key, updated.model_dump_json())
            return updated

        return self._transaction(body, key)

    def get_usage(self, host: str) -> HostUsage:
        raw = self.r.hgetall(self.k("host", host, "usage"))
        return HostUsage(**{f: int(v) for f, v in raw.items()})

    def claim_resources(self, host: str, instance_id: str, flavor: Flavor) -> bool:
        """Atomically reserve the flavor on ``host`` for ``instance_id``; idempotent.

        Returns True when the claim exists afterwards, raises InsufficientResources
        when the host cannot fit it. A second call for the same pair changes nothing.
        """
        usage_key = self.k("host", host, "usage")
        claim_key = self.k("claim", host, instance_id)
        host_rec = self.get_host(host)
        if host_rec is None:
            raise errors.NotFound(f"Compute host {host} could not be found.")

        def body(pipe: Any) -> bool:
            if pipe.exists(claim_key):
                pipe.multi()
                return True
            usage = HostUsage(**{f: int(v) for f, v in pipe.hgetall(usage_key).items()})
            short = capacity_shortfall(host_rec, usage, flavor)
            if short:
                raise errors.InsufficientResources(f"Host {host} lacks {short} for the flavor {flavor.name}")
            pipe.multi()
            pipe.hincrby(usage_key, "vcpus_used", flavor.vcpus)
            pipe.hincrby(usage_key, "memory_mb_used", flavor.ram)
            pipe.hincrby(usage_key, "local_gb_used", flavor.total_disk_gb)
            pipe.hincrby(usage_key, "running_vms", 1)
            pipe.hset(
                claim_key,
                mapping={"vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.total_disk_gb},
            )
            pipe.sadd(self.k("host", host, "claims"), instance_id)
            pipe.sadd(self.k("instance", instance_id, "claims"), host)
            return True

        return self._transaction(body, usage_key, claim_key)

    def release_claim(self, host: str, instance_id: str) -> bool:
        """Give back what :meth:`claim_resources` took; a no-op when there is no claim."""
        usage_key = self.k("host", host, "usage")
        claim_key = self.k("claim", host, instance_id)

        def body(pipe: Any) -> bool:
            claim = pipe.hgetall(claim_key)
            pipe.multi()
            if not claim:
                return False
            pipe.hincrby(usage_key, "vcpus_used", -int(claim["vcpus"]))
            pipe.hincrby(usage_key, "memory_mb_used", -int(claim["ram"]))
            pipe.hincrby(usage_key, "local_gb_used", -int(claim["disk"]))
            pipe.hincrby(usage_key, "running_vms", -1)
            pipe.delete(claim_key)
            pipe.srem(self.k("host", host, "claims"), instance_id)
            pipe.srem(self.k("instance", instance_id, "claims"), host)
            return True

        return self._transaction(body, usage_key, claim_key)

    def has_claim(self, host: str, instance_id: str) -> bool:
        return bool(self.r.exists(self.k("claim", host, instance_id)))

    def claims_on_host(self, host: str) -> set[str]:
        return set(self.r.smembers(self.k("host", host, "claims")))

    def hosts_claimed_by(self, instance_id: str) -> set[str]:
        return set(self.r.smembers(self.k("instance", instance_id, "claims")))

    # ---- flavors and images ---------------------------------------------------------------
    def put_flavor(self, flavor: Flavor) -> None:
        self.r.set(self.k("flavor", flavor.id), flavor.model_dump_json())
        self.r.sadd(self.k("flavors"), flavor.id)

    def get_flavor(self, flavor_id: str) -> Flavor | None:
        return self._load(Flavor, self.k("flavor", flavor_id))

    def list_flavors(self) -> list[Flavor]:
        ids = self.r.smembers(self.k("flavors"))
        return self._load_many(Flavor, (self.k("flavor", i) for i in ids))

    def put_image(self, image: Image, pipe: Any = None) -> None:
        """Write an image record; with ``pipe`` it joins the caller's MULTI."""
        own = pipe is None
        pipe = self.r.pipeline(transaction=True) if own else pipe
        pipe.set(self.k("image", image.id), image.model_dump_json())
        pipe.zadd(self.k("images"), {image.id: iso_to_epoch(image.created_at)})
        if own:
            pipe.execute()

    def update_image(self, image_id: str, mutate: Callable[[Image], None]) -> Image | None:
        """Compare-and-set on one image; None when it no longer exists."""
        key = self.k("image", image_id)

        def body(pipe: Any) -> Image | None:
            image = self._load(Image, key, pipe)
            pipe.multi()
            if image is None:
                return None
            mutate(image)
            image.updated_at = utcnow()
            pipe.set(key, image.model_dump_json())
            return image

        return self._transaction(body, key)

    def _backups_key(self, instance_id: str, backup_type: str) -> str:
        return self.k("instance", instance_id, "backups", backup_type)

    def add_backup(self, instance_id: str, backup_type: str, image: Image) -> None:
        """Enter an uploaded backup in its (server, backup_type) rotation set, ordered by creation."""
        self.r.zadd(self._backups_key(instance_id, backup_type), {image.id: iso_to_epoch(image.created_at)})

    def backups_past_rotation(self, instance_id: str, backup_type: str, rotation: int) -> list[str]:
        """Backups of (server, backup_type) beyond the ``rotation`` newest, oldest last."""
        return list(self.r.zrevrange(self._backups_key(instance_id, backup_type), rotation, -1))

    def get_image(self, image_id: str) -> Image | None:
        return self._load(Image, self.k("image", image_id))

    def list_images(self) -> list[Image]:
        ids = self.r.zrange(self.k("images"), 0, -1)
        return self._load_many(Image, (self.k("image", i) for i in ids))

    def delete_image(self, image_id: str) -> bool:
        image = self.get_image(image_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k("image", image_id))
        pipe.zrem(self.k("images"), image_id)
        if image is not None and image.properties.get("image_type") == "backup":
            pipe.zrem(self._backups_key(image.properties.get("instance_uuid", ""),
                                        image.properties.get("backup_type", "")), image_id)
        return bool(pipe.execute()[0])

    # ---- migrations ---------------------------------------------------------------------
    def create_migration(self, migration: Migration, pipe: Any = None) -> Migration:
        """Assign the next id and write the record; with ``pipe`` the write joins the caller's MULTI."""
        migration.id = int(self.r.incr(self.k("seq", "migration")))
        own = pipe is None
        pipe = self.r.pipeline(transaction=True) if own else pipe
        pipe.set(self.k("migration", str(migration.id)), migration.model_dump_json())
        pipe.zadd(self.k("migrations"), {str(migration.id): migration.id})
        pipe.zadd(self.k("instance", migration.instance_uuid, "migrations"), {str(migration.id): migration.id})
        pipe.set(self.k("migration-uuid", migration.uuid), migration.id)
        if own:
            pipe.execute()
        return migration

    def put_migration(self, migration: Migration, pipe: Any) -> None:
        """Queue an existing migration's new state into the caller's MULTI."""
        migration.updated_at = utcnow()
        pipe.set(self.k("migration", str(migration.id)), migration.model_dump_json())

    def get_migration(self, migration_id: int | str) -> Migration | None:
        return self._load(Migration, self.k("migration", str(migration_id)))

    def get_migration_by_uuid(self, migration_uuid: str) -> Migration | None:
        migration_id = self.r.get(self.k("migration-uuid", migration_uuid))
        return None if migration_id is None else self.get_migration(migration_id)

    def list_migrations(self, instance_uuid: str | None = None) -> list[Migration]:
        """Newest first (created_at desc, id desc in Nova)."""
        index = self.k("migrations") if instance_uuid is None else self.k("instance", instance_uuid, "migrations")
        ids = self.r.zrevrange(index, 0, -1)
        return self._load_many(Migration, (self.k("migration", i) for i in ids))

    def update_migration(self, migration_id: int | str, mutate: Callable[[Migration], None]) -> Migration:
        """Compare-and-set on one migration record; ``mutate`` may raise to abort."""
        key = self.k("migration", str(migration_id))

        def body(pipe: Any) -> Migration:
            migration = self._load(Migration, key, pipe)
            if migration is None:
                raise errors.NotFound(f"Migration {migration_id} could not be found.")
            mutate(migration)
            migration.updated_at = utcnow()
            pipe.multi()
            pipe.set(key, migration.model_dump_json())
            return migration

        return self._transaction(body, key)

    # ---- instance actions and events -------------------------------------------------------
    def _queue_action(self, pipe: Any, action: InstanceAction, seq: int) -> None:
        action.seq = seq
        pipe.set(self.k("action", action.request_id), action.model_dump_json())
        pipe.zadd(self.k("instance", action.instance_uuid, "actions"), {action.request_id: seq})

    def _queue_action_and_run(
        self, pipe: Any, action: InstanceAction, run: FlowRun, due_in: float, seq: int
    ) -> None:
        self._queue_action(pipe, action, seq)
        pipe.set(self.k("run", run.request_id), run.model_dump_json())
        pipe.zadd(self.k("runs", "due"), {run.request_id: time.time() + due_in})

    def record_action(self, action: InstanceAction) -> None:
        pipe = self.r.pipeline(transaction=True)
        self._queue_action(pipe, action, self.next_seq())
        pipe.execute()

    def get_action(self, request_id: str) -> InstanceAction | None:
        return self._load(InstanceAction, self.k("action", request_id))

    def list_actions(self, instance_id: str) -> list[InstanceAction]:
        """Newest first, as Nova orders them."""
        ids = self.r.zrevrange(self.k("instance", instance_id, "actions"), 0, -1)
        return self._load_many(InstanceAction, (self.k("action", i) for i in ids))

    def list_events(self, request_id: str) -> list[ActionEvent]:
        raw = self.r.hgetall(self.k("action", request_id, "events"))
        events = [ActionEvent.model_validate_json(v) for v in raw.values()]
        return sorted(events, key=lambda e: (e.start_time, e.key))

    def get_event(self, request_id: str, key: str) -> ActionEvent | None:
        raw = self.r.hget(self.k("action", request_id, "events"), key)
        return None if raw is None else ActionEvent.model_validate_json(raw)

    def delete_action(self, action: InstanceAction) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.k("action", action.request_id), self.k("action", action.request_id, "events"))
        pipe.zrem(self.k("instance", action.instance_uuid, "actions"), action.request_id)
        pipe.delete(self.k("run", action.request_id))
        pipe.zrem(self.k("runs", "due"), action.request_id)
        pipe.execute()

    # ---- flow runs, leases and commits ---------------------------------------------------------
    def get_run(self, request_id: str) -> FlowRun | None:
        return self._load(FlowRun, self.k("run", request_id))

    def due_runs(self, now: float, limit: int = 100) -> list[str]:
        return list(self.r.zrangebyscore(self.k("runs", "due"), 0, now, start=0, num=limit))

    def active_run_count(self) -> int:
        return int(self.r.zcard(self.k("runs", "due")))

    def acquire_lease(self, request_id: str, owner: str, ttl: float) -> bool:
        return bool(self.r.set(self.k("lease", request_id), owner, nx=True, px=int(ttl * 1000)))

    def lease_holder(self, request_id: str) -> str | None:
        return self.r.get(self.k("lease", request_id))

    def release_lease(self, request_id: str, owner: str) -> None:
        key = self.k("lease", request_id)

        def body(pipe: Any) -> None:
            holder = pipe.get(key)
            pipe.multi()
            if holder == owner:
                pipe.delete(key)

        self._transaction(body, key)

    def commit_run(
        self,
        run: FlowRun,
        *,
        owner: str | None,
        lease_ttl: float,
        due_in: float | None,
        events: Iterable[ActionEvent] = (),
        action_update: dict[str, Any] | None = None,
    ) -> None:
        """Write a flow's progress in one MULTI, only while ``owner`` still holds the lease.

        ``due_in`` None removes the run from the reaper's index (it has finished).
        Raises LeaseLost when another worker took the action over.
        """
        lease_key = self.k("lease", run.request_id)
        action_key = self.k("action", run.request_id)

        def body(pipe: Any) -> None:
            if owner is not None and pipe.get(lease_key) != owner:
                raise errors.LeaseLost(run.request_id)
            action = self._load(InstanceAction, action_key, pipe)
            pipe.multi()
            now = utcnow()
            for event in events:
                pipe.hset(self.k("action", run.request_id, "events"), event.key, event.model_dump_json())
            if action is not None:
                action.updated_at = now
                for field, value in (action_update or {}).items():
                    setattr(action, field, value)
                pipe.set(action_key, action.model_dump_json())
            run.heartbeat_at = now
            pipe.set(self.k("run", run.request_id), run.model_dump_json())
            if due_in is None:
                pipe.zrem(self.k("runs", "due"), run.request_id)
            else:
                pipe.zadd(self.k("runs", "due"), {run.request_id: time.time() + due_in})
            if owner is not None:
                pipe.pexpire(lease_key, int(lease_ttl * 1000))

        self._transaction(body, lease_key, action_key)

    def claim_stale_run(
        self, request_id: str, now: float, grace: float, decide: Callable[[FlowRun], None]
    ) -> FlowRun | None:
        """The reaper's compare-and-set on a run whose due time passed and that nobody leases.

        ``decide`` adjusts the run (wake, reaps, abort reason) inside the transaction;
        the due time moves ``grace`` ahead so that other reapers skip it. Returns the
        claimed run, or None when another process got there first or it has ended.
        """
        due_key = self.k("runs", "due")
        run_key = self.k("run", request_id)
        lease_key = self.k("lease", request_id)

        def body(pipe: Any) -> FlowRun | None:
            score = pipe.zscore(due_key, request_id)
            if score is None or score > now or pipe.exists(lease_key):
                pipe.multi()
                return None
            run = self._load(FlowRun, run_key, pipe)
            pipe.multi()
            if run is None or run.finished:
                pipe.zrem(due_key, request_id)
                return None
            decide(run)
            pipe.set(run_key, run.model_dump_json())
            pipe.zadd(due_key, {request_id: now + grace})
            return run

        return self._transaction(body, due_key, run_key, lease_key)


def capacity_shortfall(host: Host, usage: HostUsage, flavor: Flavor) -> str | None:
    if usage.vcpus_used + flavor.vcpus > host.vcpus * host.cpu_allocation_ratio:
        return "vcpus"
    if usage.memory_mb_used + flavor.ram > host.memory_mb * host.ram_allocation_ratio:
        return "memory_mb"
    if usage.local_gb_used + flavor.total_disk_gb > host.local_gb * host.disk_allocation_ratio:
        return "local_gb"
    return None
