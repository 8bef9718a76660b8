"""Compute services: one ``nova-compute`` per fleet host (nova services.py, read side)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api import current, microversions, query
from compute.models import Host

bp = Blueprint("services", __name__, url_prefix="/v2.1")

LIST_RULE = "os_compute_api:os-services:list"
BINARY = "nova-compute"


def service_view(host: Host, mv: microversions.APIVersion) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": host.service_uuid if mv >= (2, 53) else host.service_id,
        "binary": BINARY,
        "disabled_reason": host.disabled_reason,
        "host": host.name,
        "state": "up" if host.up and not host.forced_down else "down",
        "status": "enabled" if host.enabled else "disabled",
        "updated_at": host.updated_at,
        "zone": host.availability_zone,
    }
    if mv >= (2, 11):
        view["forced_down"] = host.forced_down
    return view


@bp.get("/os-services")
def list_services() -> Any:
    mv = microversions.current()
    params = query.parse({"host": query.text, "binary": query.text}, strict=mv >= (2, 75))
    ctx = current.context()
    current.authorize(LIST_RULE, {"project_id": ctx.project_id, "user_id": ctx.user_id})
    hosts = sorted((h for h, _ in current.service().list_hosts()), key=lambda h: h.service_id)
    found = [
        h for h in hosts
        if params.get("host", h.name) == h.name and params.get("binary", BINARY) == BINARY
    ]
    return jsonify({"services": [service_view(h, mv) for h in found]})
