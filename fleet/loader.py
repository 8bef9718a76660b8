"""Seeds the store from config/fleet.yaml: hosts, flavors, images and operation durations."""
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
    if not store.r.set(store.k("fleet", "seeded"), "1", nx=True):
        return False
    data = read_fleet_file(path)
    for index, raw in enumerate(data.get("hosts", []), start=1):
        store.put_host(Host(service_id=index, **raw))
    for raw in data.get("flavors", []):
        store.put_flavor(Flavor(**raw))
    for raw in data.get("images", []):
        store.put_image(Image(**raw))
    fleet.set_durations({k: float(v) for k, v in (data.get("durations") or {}).items()})
    return True
