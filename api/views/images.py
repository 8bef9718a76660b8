"""Nova's image proxy (nova images.py): the only image API a bare endpoint offers.

Served at every microversion because the SDK and OSC call it with no version header
(Nova itself stopped at 2.35). Glance statuses are shown in Nova's vocabulary;
``metadata`` is the image properties; ``server`` appears when ``instance_uuid`` is set.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api import current, links, paging, query
from api.errors import bad_request, forbidden
from api.timestamps import isotime, stored_time
from compute import images as rules
from compute.models import Image
from compute.store import MarkerNotFound

bp = Blueprint("images", __name__, url_prefix="/v2.1")

NOVA_STATUS = {
    "active": "ACTIVE",
    "queued": "SAVING",
    "saving": "SAVING",
    "deleted": "DELETED",
    "pending_delete": "DELETED",
    "killed": "ERROR",
}
PROGRESS = {"queued": 25, "active": 100}

LIST_QUERY = {
    "name": query.text,
    "status": query.text,
    "server": query.text,
    "type": query.text,
    "minRam": query.text,
    "minDisk": query.text,
    "changes-since": query.timestamp,
    "id": query.text,
    "limit": query.non_negative_int,
    "marker": query.text,
}


def nova_status(image: Image) -> str:
    return NOVA_STATUS.get(image.status, "UNKNOWN")


def progress(image: Image) -> int:
    if image.status == "saving":
        return image.progress
    return PROGRESS.get(image.status, 0)


def summary_view(image: Image) -> dict[str, Any]:
    return {"id": image.id, "name": image.name, "links": links.self_and_bookmark("images", image.id)}


def detail_view(image: Image) -> dict[str, Any]:
    view = summary_view(image)
    view.update({
        "status": nova_status(image),
        "progress": progress(image),
        "minDisk": image.min_disk,
        "minRam": image.min_ram,
        "created": isotime(image.created_at),
        "updated": isotime(image.updated_at),
        "metadata": dict(image.properties),
        "OS-EXT-IMG-SIZE:size": image.size,
    })
    server_id = image.properties.get("instance_uuid")
    if server_id is not None:
        view["server"] = {"id": server_id, "links": links.self_and_bookmark("servers", server_id)}
    return view


def wanted_ids(raw: str | None) -> set[str] | None:
    """``id=<id>`` or Glance's ``id=in:<id>,<id>`` (what OSC sends)."""
    if raw is None:
        return None
    raw = raw.removeprefix("in:")
    return {part.strip() for part in raw.split(",") if part.strip()}


def matches(image: Image, params: dict[str, Any], ids: set[str] | None,
            min_ram: int | None, min_disk: int | None) -> bool:
    if ids is not None and image.id not in ids:
        return False
    if "name" in params and image.name != params["name"]:
        return False
    status = params.get("status")
    if status is not None and status.lower() not in (image.status, nova_status(image).lower()):
        return False
    server = params.get("server")
    if server is not None and image.properties.get("instance_uuid") != server.rstrip("/").rsplit("/", 1)[-1]:
        return False
    if "type" in params and image.properties.get("image_type") != params["type"]:
        return False
    if min_ram is not None and image.min_ram < min_ram:
        return False
    if min_disk is not None and image.min_disk < min_disk:
        return False
    since = params.get("changes-since")
    updated = stored_time(image.updated_at)
    return since is None or (updated is not None and updated >= since)


def _listing(detailed: bool) -> Any:
    params = query.parse(LIST_QUERY)
    ids = wanted_ids(params.get("id"))
    min_ram, min_disk = query.minimum_filter(params, "minRam"), query.minimum_filter(params, "minDisk")
    ctx, store = current.context(), current.service().store
    marker = params.get("marker")
    after = None if marker is None else store.get_image(marker)
    if marker is not None and (after is None or not rules.is_listed(ctx, after)):
        raise bad_request(f"Marker {marker} could not be found.")
    limit = paging.effective_limit(params.get("limit"))
    try:
        images = store.page_images(limit, after=after, keep=lambda i: rules.is_listed(ctx, i) and matches(
            i, params, ids, min_ram, min_disk), listable_by=None if ctx.is_admin else ctx.project_id)
    except MarkerNotFound:
        raise bad_request(f"Marker {marker} could not be found.") from None
    render = detail_view if detailed else summary_view
    return jsonify(paging.listing_body("images", [render(i) for i in images], images, limit,
                                       "images/detail" if detailed else "images", lambda i: i.id))


@bp.get("/images")
def list_images() -> Any:
    return _listing(detailed=False)


@bp.get("/images/detail")
def list_images_detail() -> Any:
    return _listing(detailed=True)


@bp.get("/images/<image_id>")
def show_image(image_id: str) -> Any:
    return jsonify({"image": detail_view(current.service().get_image(current.context(), image_id))})


@bp.delete("/images/<image_id>")
def delete_image(image_id: str) -> Response:
    """Glance refuses a protected image; Nova turns its 403 into ImageNotAuthorized."""
    if current.service().get_image(current.context(), image_id).protected:
        raise forbidden("You are not allowed to delete the image.")
    current.service().delete_image(current.context(), image_id)
    return Response(status=204)
