"""Seeds the store from config/fleet.yaml: hosts, aggregates, flavors, images and operation durations.

A host's ``availability_zone`` is not stored with it: as in Nova, a host is in a zone by being
in an aggregate with that zone. Each zone named on a host (other than the default one) becomes
an aggregate of that name with that zone, holding its hosts. An ``aggregates`` list may also
name aggregates outright: ``{name, availability_zone?, hosts?, metadata?}``.

The file is applied in one transaction with its digest (compute/store/fleet_seed.py): at every
start the same file changes nothing, a crash midway leaves the fleet as it was, and an edited
file is applied as a change (hosts added, updated or removed, flavors replaced, images and
aggregates added) or refused as a whole with the reason logged: never silently ignored.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pydantic
import yaml

from compute.models import Flavor, Host, Image
from compute.store import FleetChangeRefused, FleetFile, Store
from compute.store.fleet_seed import FleetAggregate
from fleet.simulator import SimulatedFleet

log = logging.getLogger(__name__)


# libyaml's parser when PyYAML has it: the pure-Python one takes seconds over a 10,000-host file.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_fleet_file(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_LOADER) or {}


def fleet_file_digest(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def parse_fleet_file(path: str | Path, default_zone: str, text: bytes | None = None) -> FleetFile:
    """The file as records, checked (a bad row raises FleetChangeRefused naming it)."""
    text = Path(path).read_bytes() if text is None else text
    data = yaml.load(text, Loader=_LOADER) or {}
    try:
        rows = [dict(raw) for raw in data.get("hosts") or []]
        for row in rows:
            Host(**row)
        zones: dict[str, list[str]] = {}
        for row in rows:
            zone = row.get("availability_zone") or default_zone
            if zone != default_zone:
                zones.setdefault(zone, []).append(row["name"])
        aggregates = [FleetAggregate(name=zone, availability_zone=zone, hosts=members) for zone, members in zones.items()]
        aggregates += [FleetAggregate(name=raw["name"], availability_zone=raw.get("availability_zone"),
                                      hosts=list(raw.get("hosts") or []),
                                      metadata={k: str(v) for k, v in (raw.get("metadata") or {}).items()})
                       for raw in data.get("aggregates") or []]
        return FleetFile(
            digest=fleet_file_digest(text), hosts=rows, aggregates=aggregates,
            flavors=[Flavor(**raw) for raw in data.get("flavors") or []],
            images=[Image(**raw) for raw in data.get("images") or []],
            durations={k: float(v) for k, v in (data.get("durations") or {}).items()})
    except (pydantic.ValidationError, KeyError, TypeError, ValueError) as exc:
        raise FleetChangeRefused(f"{path} is not a valid fleet file: {exc}") from None


def seed_fleet(store: Store, fleet: SimulatedFleet, path: str | Path) -> bool:
    """Make the store hold the fleet file; True when something was written.

    Also rebuilds any index a store written by an older version lacks (compute/store/keys.py).
    A refused file is logged as an error and leaves the store as it was.
    """
    rebuilt = store.rebuild_missing_indexes()
    if rebuilt:
        log.warning("rebuilt missing store indexes: %s", rebuilt)
    text = Path(path).read_bytes()
    previous = store.fleet_digest()
    if previous == fleet_file_digest(text):  # the usual start: this very file is loaded (not even parsed)
        return False
    try:
        applied = store.apply_fleet(parse_fleet_file(path, store.default_availability_zone, text))
    except FleetChangeRefused as exc:
        log.error("fleet file %s NOT applied, the fleet stays as it was: %s", path, exc)
        return False
    if not applied.changed:
        return False
    if previous is None:
        log.info("fleet seeded from %s: %d hosts", path, len(applied.added))
    else:
        log.warning("fleet file %s changed since it was loaded; applied: %d hosts added %s, %d updated %s, "
                    "%d removed %s, aggregates created %s", path, len(applied.added), applied.added[:10],
                    len(applied.updated), applied.updated[:10], len(applied.removed), applied.removed[:10],
                    applied.aggregates_created)
    return True
