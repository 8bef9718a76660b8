"""The one check that resource claims follow the servers, for any Store (fakeredis or the real Redis)."""
from __future__ import annotations

from collections.abc import Iterable

from compute.models import Flavor
from compute.store import Store


def assert_claims_follow_servers(store: Store, *, extra_claims: Iterable[tuple[str, str, Flavor]] = ()) -> None:
    """Claims and usage are exactly what the servers need, and nothing else is claimed.

    - every live server holds a claim on its host and on no other host (none when it has no host);
    - a deleted server holds no claim anywhere;
    - every host's claims are exactly the live servers on it, and its usage counters
      (vcpus, RAM, disk, running VMs) are the sum of those servers' flavors.

    ``extra_claims`` names claims a test made itself, as ``(host, claimant id, flavor)``:
    they must be there too, and count in their host's usage.
    """
    extra = list(extra_claims)
    instances = store.list_instances()
    servers = [i for i in instances if not i.deleted]
    for inst in servers:
        assert store.hosts_claimed_by(inst.id) == ({inst.host} if inst.host else set()), (
            f"server {inst.name} ({inst.id}) on {inst.host}, {inst.vm_state}/{inst.task_state}")
    for inst in instances:
        if inst.deleted:
            assert store.hosts_claimed_by(inst.id) == set(), f"deleted server {inst.name} ({inst.id})"
    for host in store.list_hosts():
        mine = [i.flavor for i in servers if i.host == host.name]
        theirs = [(claimant, flavor) for on, claimant, flavor in extra if on == host.name]
        flavors = mine + [flavor for _, flavor in theirs]
        expected_ids = {i.id for i in servers if i.host == host.name} | {claimant for claimant, _ in theirs}
        assert store.claims_on_host(host.name) == expected_ids, host.name
        usage = store.get_usage(host.name)
        assert (usage.vcpus_used, usage.memory_mb_used, usage.local_gb_used, usage.running_vms) == (
            sum(f.vcpus for f in flavors), sum(f.ram for f in flavors),
            sum(f.total_disk_gb for f in flavors), len(flavors)), host.name
