"""The per-(host, server) resource claims: a claim or its release is one read, then one script
that writes only while what was read still holds."""
from __future__ import annotations

from typing import Any

from compute import errors
from compute.models import Flavor, Host, HostUsage, Instance
from compute.store.base import StoreBase
from compute.store.placement import ClaimBasis, placement_score

# Shared by CLAIM and RELEASE_CLAIM: whether a record, a hash (ARGV[at] = its field count, then
# field, value pairs) is as the caller read it (an absent string reads as ''); and the move of
# ``hosts:totals`` by a claim's amounts (ARGV[6] '1': the host is enabled; a zero is not written).
_UNCHANGED = """
local function same_string(key, expected) return (redis.call('GET', key) or '') == expected end
local function same_hash(key, at)
  local n = tonumber(ARGV[at])
  if redis.call('HLEN', key) ~= n then return false end
  for i = at + 1, at + 2 * n, 2 do
    if redis.call('HGET', key, ARGV[i]) ~= ARGV[i + 1] then return false end
  end
  return true
end
local function after_hash(at) return at + 1 + 2 * tonumber(ARGV[at]) end
local function move_totals(sign, vcpus, ram, disk)
  if ARGV[6] ~= '1' then return end
  local moves = {vcpus_used = vcpus, memory_mb_used = ram, local_gb_used = disk, running_vms = 1}
  for _, field in ipairs({'vcpus_used', 'memory_mb_used', 'local_gb_used', 'running_vms'}) do
    local amount = sign * tonumber(moves[field])
    if amount ~= 0 then redis.call('HINCRBY', KEYS[7], field, amount) end
  end
end
"""

# KEYS: claim, host, usage, placement pointer, host's claims, server's claims, hosts:totals[, placement
# zone index]. ARGV: host JSON, placement pointer ('' for none), new placement score ('' for none),
# server id, host name, '1' when the totals move, the claim (vcpus, ram, disk) as a hash, the usage as
# read as a hash. 1 when the claim exists afterwards, 0 (nothing written) when what was read changed.
CLAIM = _UNCHANGED + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local at = after_hash(7)
if not (same_string(KEYS[2], ARGV[1]) and same_string(KEYS[4], ARGV[2]) and same_hash(KEYS[3], at)) then return 0 end
local vcpus, ram, disk = ARGV[9], ARGV[11], ARGV[13]
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[8], ARGV[3], ARGV[5]) end
redis.call('HINCRBY', KEYS[3], 'vcpus_used', vcpus)
redis.call('HINCRBY', KEYS[3], 'memory_mb_used', ram)
redis.call('HINCRBY', KEYS[3], 'local_gb_used', disk)
redis.call('HINCRBY', KEYS[3], 'running_vms', 1)
move_totals(1, vcpus, ram, disk)
redis.call('HSET', KEYS[1], 'vcpus', vcpus, 'ram', ram, 'disk', disk)
redis.call('SADD', KEYS[5], ARGV[4])
redis.call('SADD', KEYS[6], ARGV[5])
return 1
"""

# KEYS and ARGV as CLAIM's, the host JSON '' for none and the claim as read. 1 when released, 0
# (nothing written) when what the caller read has changed.
RELEASE_CLAIM = _UNCHANGED + """
local at = after_hash(7)
if not (same_hash(KEYS[1], 7) and same_string(KEYS[2], ARGV[1]) and same_string(KEYS[4], ARGV[2])
        and same_hash(KEYS[3], at)) then return 0 end
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[8], ARGV[3], ARGV[5]) end
local claim = redis.call('HMGET', KEYS[1], 'vcpus', 'ram', 'disk')
redis.call('HINCRBY', KEYS[3], 'vcpus_used', -tonumber(claim[1]))
redis.call('HINCRBY', KEYS[3], 'memory_mb_used', -tonumber(claim[2]))
redis.call('HINCRBY', KEYS[3], 'local_gb_used', -tonumber(claim[3]))
redis.call('HINCRBY', KEYS[3], 'running_vms', -1)
move_totals(-1, claim[1], claim[2], claim[3])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[5], ARGV[4])
redis.call('SREM', KEYS[6], ARGV[5])
return 1
"""


def hash_args(fields: dict[str, Any]) -> list[Any]:
    """A hash as the scripts above take it: its field count, then field, value pairs."""
    return [len(fields), *(item for pair in fields.items() for item in pair)]


def moves_totals(host: Host | None) -> str:
    """The scripts' flag: a claim on an enabled host moves ``hosts:totals`` (``statistics_share``)."""
    return "1" if host is not None and host.enabled else ""


def capacity_shortfall(host: Host, usage: HostUsage, flavor: Flavor) -> str | None:
    """The first resource that ``flavor`` would over-commit on ``host``, or None when it fits."""
    if usage.vcpus_used + flavor.vcpus > host.vcpus * host.cpu_allocation_ratio:
        return "vcpus"
    if usage.memory_mb_used + flavor.ram > host.memory_mb * host.ram_allocation_ratio:
        return "memory_mb"
    if usage.local_gb_used + flavor.total_disk_gb > host.local_gb * host.disk_allocation_ratio:
        return "local_gb"
    return None


class ClaimRecords(StoreBase):
    def claim_resources(self, host: str, instance_id: str, flavor: Flavor, seen: ClaimBasis | None = None) -> bool:
        """Atomically reserve the flavor on ``host`` for ``instance_id``; idempotent.

        Returns True when the claim exists afterwards, raises InsufficientResources
        when the host cannot fit it. A second call for the same pair changes nothing.
        One read, then one script that writes only while what was read is unchanged (else
        read again): two round trips; one when ``seen`` (what a search just read) still holds.
        Only a fresh read refuses: what ``seen`` lacks may have been given back since.
        """
        while True:
            if seen is not None:  # the script answers 1 for a claim already there
                exists, raw_host, raw_usage, listed_in = False, seen.raw_host, seen.raw_usage, seen.listed_in
            else:
                exists, raw_host, raw_usage, listed_in = self._read_for_claim(host, instance_id)
            if exists:
                return True
            if raw_host is None:
                raise errors.NotFound(f"Compute host {host} could not be found.")
            host_rec = Host.model_validate_json(raw_host)
            usage = HostUsage(**{f: int(v) for f, v in raw_usage.items()})
            short = capacity_shortfall(host_rec, usage, flavor)
            if short and seen is not None:
                seen = None
                continue
            if short:
                raise errors.InsufficientResources(f"Host {host} lacks {short} for the flavor {flavor.name}")
            score = ""
            if listed_in is not None:
                usage.memory_mb_used += flavor.ram
                score = repr(placement_score(host_rec, usage))
            if self._script(CLAIM)(
                    keys=self._claim_keys(host, instance_id, listed_in),
                    args=[raw_host, listed_in or "", score, instance_id, host, moves_totals(host_rec),
                          *hash_args({"vcpus": flavor.vcpus, "ram": flavor.ram, "disk": flavor.total_disk_gb}),
                          *hash_args(raw_usage)]):
                return True
            seen = None

    def release_claim(self, host: str, instance_id: str) -> bool:
        """Give back what :meth:`claim_resources` took; a no-op when there is no claim. Two round
        trips, as in :meth:`claim_resources`."""
        while True:
            claim, raw_host, raw_usage, listed_in = self._read_for_claim(host, instance_id)
            if not claim:
                return False
            host_rec = None if raw_host is None else Host.model_validate_json(raw_host)
            score = ""
            if listed_in is not None and host_rec is not None:
                usage = HostUsage(**{f: int(v) for f, v in raw_usage.items()})
                usage.memory_mb_used -= int(claim["ram"])
                score = repr(placement_score(host_rec, usage))
            if self._script(RELEASE_CLAIM)(
                    keys=self._claim_keys(host, instance_id, listed_in),
                    args=[raw_host or "", listed_in or "", score, instance_id, host, moves_totals(host_rec),
                          *hash_args(claim), *hash_args(raw_usage)]):
                return True

    def _read_for_claim(self, host: str,
                        instance_id: str) -> tuple[dict[str, str], str | None, dict[str, str], str | None]:
        """What a claim's or a release's script checks, in one pipelined round trip: the claim (empty when
        there is none), the host's record, its usage and its placement pointer."""
        reads = self._client.pipeline(transaction=False)
        reads.hgetall(self._keys.claim(host, instance_id))
        reads.get(self._keys.host(host))
        reads.hgetall(self._keys.host_usage(host))
        reads.get(self._keys.host_placement(host))
        claim, raw_host, raw_usage, listed_in = reads.execute()
        return claim, raw_host, raw_usage, listed_in

    def _claim_keys(self, host: str, instance_id: str, listed_in: str | None) -> list[str]:
        """The keys of CLAIM and RELEASE_CLAIM, in their order."""
        keys = [self._keys.claim(host, instance_id), self._keys.host(host), self._keys.host_usage(host),
                self._keys.host_placement(host), self._keys.host_claims(host), self._keys.instance_claims(instance_id),
                self._keys.host_totals()]
        if listed_in is not None:
            keys.append(self._keys.placement(listed_in))
        return keys

    def has_claim(self, host: str, instance_id: str) -> bool:
        return bool(self._client.exists(self._keys.claim(host, instance_id)))

    def claims_on_host(self, host: str) -> set[str]:
        return set(self._client.smembers(self._keys.host_claims(host)))

    def servers_claiming(self, hosts: list[str]) -> list[Instance]:
        """The server records holding a claim on any of ``hosts``: O(their servers), not O(servers)."""
        if not hosts:
            return []
        pipe = self._client.pipeline(transaction=False)
        for host in hosts:
            pipe.smembers(self._keys.host_claims(host))
        ids = sorted({i for found in pipe.execute() for i in found})
        return self._load_many(Instance, (self._keys.instance(i) for i in ids))

    def hosts_claimed_by(self, instance_id: str) -> set[str]:
        return set(self._client.smembers(self._keys.instance_claims(instance_id)))
