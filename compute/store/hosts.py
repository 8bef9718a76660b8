"""Compute hosts, their usage counters and the per-(host, instance) resource claims."""
from __future__ import annotations

from typing import Any

from compute import errors
from compute.models import Flavor, Host, HostUsage, utcnow
from compute.store.aggregates import read_host_zones
from compute.store.base import StoreBase

# A host's zone is decided by its aggregates, never stored with it.
_NOT_STORED = {"availability_zone"}
HOSTING_INSTANCES = ("Unable to delete compute service that is hosting instances. "
                     "Migrate or delete the instances first.")


def capacity_shortfall(host: Host, usage: HostUsage, flavor: Flavor) -> str | None:
    """The first resource that ``flavor`` would over-commit on ``host``, or None when it fits."""
    if usage.vcpus_used + flavor.vcpus > host.vcpus * host.cpu_allocation_ratio:
        return "vcpus"
    if usage.memory_mb_used + flavor.ram > host.memory_mb * host.ram_allocation_ratio:
        return "memory_mb"
    if usage.local_gb_used + flavor.total_disk_gb > host.local_gb * host.disk_allocation_ratio:
        return "local_gb"
    return None


class HostRecords(StoreBase):
    def put_host(self, host: Host) -> None:
        pipe = self._multi()
        pipe.set(self._keys.host(host.name), host.model_dump_json(exclude=_NOT_STORED))
        pipe.sadd(self._keys.host_index(), host.name)
        pipe.execute()

    def get_host(self, name: str) -> Host | None:
        host = self._load(Host, self._keys.host(name))
        return None if host is None else self._zoned([host])[0]

    def list_hosts(self) -> list[Host]:
        names = sorted(self._client.smembers(self._keys.host_index()))
        return self._zoned(self._load_many(Host, (self._keys.host(n) for n in names)))

    def _zoned(self, hosts: list[Host]) -> list[Host]:
        """Each host with the zone its aggregates give it (nova/availability_zones.py)."""
        zones = read_host_zones(self._client, self._keys, (h.name for h in hosts))
        for host in hosts:
            found = zones.get(host.name)
            host.availability_zone = found[0] if found else self.default_availability_zone
        return hosts

    def delete_host(self, name: str) -> None:
        """The service delete: the host, its usage and its aggregate memberships go in one MULTI.

        Refused (409) while any server holds a claim on it.
        """
        key, claims, aggregates = self._keys.host(name), self._keys.host_claims(name), self._keys.host_aggregates(name)

        def body(pipe: Any) -> None:
            if not pipe.exists(key):
                raise errors.NotFound(f"Compute host {name} could not be found.")
            if pipe.scard(claims):
                raise errors.Conflict(HOSTING_INSTANCES)
            member_of = pipe.smembers(aggregates)
            pipe.multi()
            pipe.delete(key, self._keys.host_usage(name), claims, aggregates)
            pipe.srem(self._keys.host_index(), name)
            for aggregate_id in member_of:
                pipe.zrem(self._keys.aggregate_hosts(aggregate_id), name)

        self._transaction(body, key, claims, aggregates)

    def update_host(self, name: str, **changes: Any) -> Host:
        key = self._keys.host(name)

        def body(pipe: Any) -> Host:
            host = self._load(Host, key, pipe)
            if host is None:
                raise errors.NotFound(f"Compute host {name} could not be found.")
            updated = host.model_copy(update={**changes, "updated_at": utcnow()})
            pipe.multi()
            pipe.set(key, updated.model_dump_json(exclude=_NOT_STORED))
            return updated

        return self._zoned([self._transaction(body, key)])[0]

    def get_usage(self, host: str) -> HostUsage:
        raw = self._client.hgetall(self._keys.host_usage(host))
        return HostUsage(**{f: int(v) for f, v in raw.items()})

    def claim_resources(self, host: str, instance_id: str, flavor: Flavor) -> bool:
        """Atomically reserve the flavor on ``host`` for ``instance_id``; idempotent.

        Returns True when the claim exists afterwards, raises InsufficientResources
        when the host cannot fit it. A second call for the same pair changes nothing.
        """
        usage_key = self._keys.host_usage(host)
        claim_key = self._keys.claim(host, instance_id)
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
            pipe.sadd(self._keys.host_claims(host), instance_id)
            pipe.sadd(self._keys.instance_claims(instance_id), host)
            return True

        return self._transaction(body, usage_key, claim_key)

    def release_claim(self, host: str, instance_id: str) -> bool:
        """Give back what :meth:`claim_resources` took; a no-op when there is no claim."""
        usage_key = self._keys.host_usage(host)
        claim_key = self._keys.claim(host, instance_id)

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
            pipe.srem(self._keys.host_claims(host), instance_id)
            pipe.srem(self._keys.instance_claims(instance_id), host)
            return True

        return self._transaction(body, usage_key, claim_key)

    def has_claim(self, host: str, instance_id: str) -> bool:
        return bool(self._client.exists(self._keys.claim(host, instance_id)))

    def claims_on_host(self, host: str) -> set[str]:
        return set(self._client.smembers(self._keys.host_claims(host)))

    def hosts_claimed_by(self, instance_id: str) -> set[str]:
        return set(self._client.smembers(self._keys.instance_claims(instance_id)))
