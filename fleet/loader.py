"""Seeds the store from config/fleet.yaml: hosts, aggregates, flavors, images and operation durations.

A host's ``availability_zone`` is not stored with it: as in Nova, a host is in a zone by being
in an aggregate with that zone. Each zone named on a host (other than the default one) becomes
an aggregate of that name with that zone, holding its hosts. An ``aggregates`` list may also
name aggregates outright: ``{name, availability_zone?, hosts?, metadata?}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compute.models import Flavor, Host, Image
from compute.store import Store
from fleet.simulator import SimulatedFleet


def read_fleet_file(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def seed_fleet(store: Store, fleet: SimulatedFleet, path: str | Path) -> bool:
    """Load the fleet once per store; returns False when it was already there."""
    if not store.mark_fleet_seeded():
        return False
    data = read_fleet_file(path)
    zones: dict[str, list[str]] = {}
    for index, raw in enumerate(data.get("hosts", []), start=1):
        host = Host(service_id=index, **raw)
        store.put_host(host)
        if host.availability_zone != store.default_availability_zone:
            zones.setdefault(host.availability_zone, []).append(host.name)
    for zone, members in zones.items():
        seed_aggregate(store, {"name": zone, "availability_zone": zone, "hosts": members})
    for raw in data.get("aggregates") or []:
        seed_aggregate(store, raw)
    for raw in data.get("flavors", []):
        store.put_flavor(Flavor(**raw))
    for raw in data.get("images", []):
        store.put_image(Image(**raw))
    fleet.set_durations({k: float(v) for k, v in (data.get("durations") or {}).items()})
    return True


def seed_aggregate(store: Store, raw: dict[str, Any]) -> None:
    """One aggregate of the fleet file, made through the same checks as POST /os-aggregates."""
    aggregate = store.create_aggregate(raw["name"], raw.get("availability_zone"))
    if raw.get("metadata"):
        store.set_aggregate_metadata(aggregate.id, {k: str(v) for k, v in raw["metadata"].items()})
    for host in raw.get("hosts") or []:
        store.add_aggregate_host(aggregate.id, host)
