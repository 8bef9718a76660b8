"""A generated fleet for the benchmarks: N identical hosts written to a temporary fleet YAML.

The flavors and images are the sample fleet's (config/fleet.yaml); the hosts are generated, so a
benchmark never depends on the sample fleet's host names. Every host has the same hypervisor,
CPU model and shared storage, so any host can take any other's servers (live migration without
block migration).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from compute.models import Instance, utcnow
from compute.settings import CONFIG_DIR
from compute.store import Store
from fleet.loader import read_fleet_file


def generated_hosts(count: int, prefix: str = "bench-host") -> list[dict[str, Any]]:
    return [{"name": f"{prefix}-{index:03d}", "hypervisor_type": "QEMU", "hypervisor_version": 8002000,
             "cpu_model": "Haswell", "vcpus": 256, "memory_mb": 1 << 20, "local_gb": 20000,
             "shared_storage": "bench-shared", "host_ip": f"198.18.{index // 250}.{index % 250 + 1}"}
            for index in range(count)]


def write_fleet(hosts: int, durations: dict[str, float], directory: str | None = None) -> Path:
    """A fleet file with ``hosts`` generated hosts, the sample flavors and images, and ``durations``."""
    sample = read_fleet_file(CONFIG_DIR / "fleet.yaml")
    data = {"durations": durations, "hosts": generated_hosts(hosts),
            "flavors": sample.get("flavors", []), "images": sample.get("images", [])}
    path = Path(tempfile.mkdtemp(prefix="bench-fleet-", dir=directory)) / "fleet.yaml"
    # libyaml's dumper where PyYAML has it: the pure-Python one takes seconds for 10,000 hosts.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(data, Dumper=dumper, sort_keys=False), encoding="utf-8")
    return path


def host_names(store: Store) -> list[str]:
    return sorted(h.name for h in store.list_hosts())


def place_servers(store: Store, count: int, hosts: list[str], flavor_id: str = "1",
                  name: str = "bench") -> list[str]:
    """``count`` ACTIVE servers spread round-robin over ``hosts``, straight into the store (claims included)."""
    flavor = store.get_flavor(flavor_id)
    assert flavor is not None
    ids = []
    for index in range(count):
        host = hosts[index % len(hosts)]
        inst = Instance(name=f"{name}-{index}", project_id="demo", user_id="demo", flavor=flavor, host=host,
                        node=host, vm_state="active", power_state=1, launched_at=utcnow())
        store.claim_resources(host, inst.id, flavor)
        store.put_instance(inst)
        ids.append(inst.id)
    return ids


def remove_servers(store: Store, ids: list[str]) -> None:
    """Give the fleet back as it was, so the next phase starts from the same capacity."""
    for server_id in ids:
        for host in store.hosts_claimed_by(server_id):
            store.release_claim(host, server_id)
        store.purge_instance_record(server_id)
