"""Flavors (nova flavors.py, read side). No policy: every caller may read flavors.

``is_public``: non-admins see public flavors only; admins see public ones by default,
non-public ones with ``false`` and all with ``none`` (the SDK sends ``None``, OSC ``True``).
Unknown query parameters are ignored.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api import current, links, microversions, paging, query
from compute.models import Flavor

bp = Blueprint("flavors", __name__, url_prefix="/v2.1")

LIST_QUERY = {
    "is_public": query.text,
    "minRam": query.text,
    "minDisk": query.text,
    "limit": query.non_negative_int,
    "marker": query.text,
}


def summary_view(flavor: Flavor, mv: microversions.APIVersion) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": flavor.id, "name": flavor.name, "links": links.self_and_bookmark("flavors", flavor.id)}
    if mv >= (2, 55):
        view["description"] = flavor.description
    return view


def detail_view(flavor: Flavor, mv: microversions.APIVersion) -> dict[str, Any]:
    view = summary_view(flavor, mv)
    view.update({
        "ram": flavor.ram,
        "disk": flavor.disk,
        "vcpus": flavor.vcpus,
        "swap": flavor.swap if mv >= (2, 75) else (flavor.swap or ""),
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral,
        "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": flavor.is_public,
        "rxtx_factor": flavor.rxtx_factor,
    })
    if mv >= (2, 61):
        view["extra_specs"] = dict(flavor.extra_specs)
    return view


def public_filter(raw: str | None, is_admin: bool) -> bool | None:
    """True: public only; False: non-public only; None: all."""
    if not is_admin or raw is None:
        return True
    lowered = raw.strip().lower()
    if lowered == "none":
        return None
    if lowered in ("false", "0", "no", "off", "f", "n"):
        return False
    return True


def _listing(detailed: bool) -> Any:
    mv = microversions.current()
    params = query.parse(LIST_QUERY)
    ctx = current.context()
    public = public_filter(params.get("is_public"), ctx.is_admin)
    min_ram, min_disk = query.minimum_filter(params, "minRam"), query.minimum_filter(params, "minDisk")
    flavors = sorted(current.service().list_flavors(), key=lambda f: f.id)
    marker = params.get("marker")
    flavors = paging.after_marker(flavors, marker, lambda f: f.id, f"Marker {marker} could not be found.")
    flavors = [
        f for f in flavors
        if (public is None or f.is_public == public)
        and (min_ram is None or f.ram >= min_ram)
        and (min_disk is None or f.disk >= min_disk)
    ]
    limit = paging.effective_limit(params.get("limit"))
    flavors = flavors[:limit]
    render = detail_view if detailed else summary_view
    return jsonify(paging.listing_body("flavors", [render(f, mv) for f in flavors], flavors, limit,
                                       "flavors/detail" if detailed else "flavors", lambda f: f.id))


@bp.get("/flavors")
def list_flavors() -> Any:
    return _listing(detailed=False)


@bp.get("/flavors/detail")
def list_flavors_detail() -> Any:
    return _listing(detailed=True)


@bp.get("/flavors/<flavor_id>")
def show_flavor(flavor_id: str) -> Any:
    return jsonify({"flavor": detail_view(current.service().get_flavor(flavor_id), microversions.current())})
