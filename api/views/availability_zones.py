"""Availability zones (nova availability_zone.py): ``GET /os-availability-zone`` for anyone,
``GET /os-availability-zone/detail`` (hosts and services) for admins.

A zone is available when at least one enabled service is in it (up or down does not matter);
zones whose services are all disabled come after, unavailable. The services are the fleet's
``nova-compute`` ones, in their hosts' zones (compute/store/aggregates.py); no other service is
listed, so the ``internal`` zone of Nova's scheduler and conductor does not appear.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from flask import Blueprint, jsonify

from api import current, microversions, query
from compute.models import Host
from compute.services import BINARY

bp = Blueprint("availability_zones", __name__, url_prefix="/v2.1")

RULE = "os_compute_api:os-availability-zone:{}"
STRICT_QUERY = (2, 102)


def zones() -> tuple[dict[str, list[Host]], list[str]]:
    """Available zones (name -> their enabled hosts), and the names of the unavailable ones; sorted.

    Every host is in the answer (or decides a zone's state), so every record is read, but nothing more:
    no usage, zones from the aggregates' side (``Store.list_hosts``: a fixed number of commands)."""
    enabled: dict[str, list[Host]] = defaultdict(list)
    disabled: set[str] = set()
    for host in current.service().store.list_hosts():
        if host.enabled:
            enabled[host.availability_zone].append(host)
        else:
            disabled.add(host.availability_zone)
    return dict(sorted(enabled.items())), sorted(disabled - set(enabled))


def listing(rule: str) -> tuple[dict[str, list[Host]], list[str]]:
    query.parse({}, strict=microversions.current() >= STRICT_QUERY)
    current.authorize(RULE.format(rule), {})
    return zones()


@bp.get("/os-availability-zone")
def list_zones() -> Any:
    """Names only: read from the placement index (O(zones)), never the fleet's hosts."""
    query.parse({}, strict=microversions.current() >= STRICT_QUERY)
    current.authorize(RULE.format("list"), {})
    available, unavailable = current.service().store.zones_in_use()
    available, unavailable = sorted(available), sorted(unavailable)
    internal = current.settings().internal_service_availability_zone
    info = [{"zoneName": name, "zoneState": {"available": True}, "hosts": None}
            for name in available if name != internal]
    info += [{"zoneName": name, "zoneState": {"available": False}, "hosts": None}
             for name in unavailable if name != internal]
    return jsonify({"availabilityZoneInfo": info})


@bp.get("/os-availability-zone/detail")
def list_zones_detail() -> Any:
    available, unavailable = listing("detail")
    info: list[dict[str, Any]] = []
    for name, members in available.items():
        hosts = {h.name: {BINARY: {"available": h.service_is_up, "active": h.enabled, "updated_at": h.updated_at}}
                 for h in members}
        info.append({"zoneName": name, "zoneState": {"available": True}, "hosts": hosts})
    info += [{"zoneName": name, "zoneState": {"available": False}, "hosts": None} for name in unavailable]
    return jsonify({"availabilityZoneInfo": info})
