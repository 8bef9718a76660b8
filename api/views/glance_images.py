"""The image service: Glance's v2 image API over the image records the compute side keeps.

Served under ``/image`` on the API's port (a devstack-style path) and registered as service
type ``image`` in the dev identity catalog (api/views/identity.py) and in the clouds.yaml
``compute-actions dev`` prints (``image_endpoint_override``). The Nova image proxy
(api/views/images.py) reads the same records: backups, snapshots and the fleet's images.

- ``GET /image``, ``/image/`` (300) and ``/image/versions`` (200): version discovery.
- ``GET /image/v2/images``: Glance's filters (``name``, ``id``, ``status``, ``owner``,
  ``container_format``, ``disk_format`` — each also ``in:a,b`` —, ``visibility``,
  ``member_status``, ``tag`` (repeatable, all must match), ``protected``, ``os_hidden``,
  ``size_min``/``size_max``, ``created_at``/``updated_at`` with ``gt:``/``gte:``/``lt:``/
  ``lte:``/``eq:``/``neq:``, ``min_ram``/``min_disk``, and any other key as a property),
  ``sort_key``/``sort_dir`` (repeatable) or ``sort=key:dir,...``, ``limit`` (default 25, at most
  1000) and ``marker``; ``first``, ``next`` (when the page is full) and ``schema``, as
  relative ``/v2/...`` links as Glance writes them.
- ``GET``/``PATCH``/``DELETE /image/v2/images/{id}``, ``PUT``/``DELETE .../tags/{tag}``.
- ``GET /image/v2/schemas/image`` and ``/images``.

Who sees what is compute/images.py (Glance's rules); only the owner or an admin changes or
deletes (then the ``compute_actions:image:*`` policies). There is no image data: no upload,
no download, no import; ``checksum`` and ``os_hash_value`` of an active image are computed
from its id and size (a stand-in for the data's hashes). Errors are Glance's (webob's JSON
form: ``{"message", "code": "404 Not Found", "title"}``). The list query is api/glance_listing.py,
the JSON patch api/glance_patch.py.
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api import bodies, current
from api.blueprint_auth import authenticate_all_but
from api.errors import ApiError
from api.glance_listing import (
    LIMIT_DEFAULT,
    compare,
    owners_wanted,
    page_link,
    parse_filters,
    parse_limit,
    parse_member_status,
    parse_sorting,
    parse_visibility,
)
from api.glance_patch import (
    CORE,
    PATCH_TYPES,
    TAG_QUOTA,
    apply_operations,
    parse_operations,
)
from api.image_schemas import image_schema, images_schema
from api.links import root_url
from api.timestamps import isotime
from compute import images as rules
from compute.models import Image
from compute.store import MarkerNotFound

bp = Blueprint("glance_images", __name__, url_prefix="/image")

VERSIONS = [("v2.7", "CURRENT")] + [(f"v2.{n}", "SUPPORTED") for n in range(6, -1, -1)]
NEWEST_FIRST = [("created_at", "desc"), ("id", "desc")]  # Glance's default sort: the ``images`` index's order
PUBLIC_ENDPOINTS = frozenset({"glance_images.versions", "glance_images.versions_list"})
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
          413: "Request Entity Too Large", 415: "Unsupported Media Type"}


# ---- plumbing: who is calling, and Glance's error shape ------------------------------------------
authenticate_all_but(bp, PUBLIC_ENDPOINTS)


@bp.errorhandler(ApiError)
def _glance_error(exc: ApiError) -> Response:
    title = TITLES.get(exc.code, "Error")
    response = jsonify({"message": exc.message, "code": f"{exc.code} {title}", "title": title})
    response.status_code = exc.code
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


def _error(code: int, message: str) -> ApiError:
    return ApiError(code, message)


def _not_found(image_id: str) -> ApiError:
    return _error(404, f"No image found with ID {image_id}")


# ---- the image view -----------------------------------------------------------------------------
def _hashes(image: Image) -> tuple[str | None, str | None, str | None]:
    """(checksum, os_hash_algo, os_hash_value): None until the data is uploaded, as in Glance."""
    if image.status not in ("active", "deactivated"):
        return None, None, None
    seed = f"{image.id}:{image.size}".encode()
    checksum = image.checksum or hashlib.md5(seed, usedforsecurity=False).hexdigest()
    return checksum, "sha512", hashlib.sha512(seed).hexdigest()


def image_view(image: Image) -> dict[str, Any]:
    checksum, algo, digest = _hashes(image)
    uploaded = image.status in ("active", "deactivated")
    view: dict[str, Any] = {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "visibility": image.visibility,
        "protected": image.protected,
        "os_hidden": image.os_hidden,
        "checksum": checksum,
        "os_hash_algo": algo,
        "os_hash_value": digest,
        "owner": image.owner,
        "size": image.size if uploaded else None,
        "virtual_size": None,
        "min_ram": image.min_ram,
        "min_disk": image.min_disk,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
        "tags": list(image.tags),
    }
    for key, value in image.properties.items():
        if key not in CORE:
            view[key] = value
    view.update({"self": f"/v2/images/{image.id}", "file": f"/v2/images/{image.id}/file",
                 "schema": "/v2/schemas/image"})
    return view


# ---- version discovery ----------------------------------------------------------------------------
def _versions_body() -> dict[str, Any]:
    href = f"{root_url()}/image/v2/"
    return {"versions": [{"id": vid, "status": status, "links": [{"rel": "self", "href": href}]}
                         for vid, status in VERSIONS]}


@bp.get("")
@bp.get("/")
@bp.get("/v2")
@bp.get("/v2/")
def versions() -> Response:
    """Glance answers its root with 300 Multiple Choices and the list (keystoneauth reads either)."""
    response = jsonify(_versions_body())
    response.status_code = 300
    return response


@bp.get("/versions")
def versions_list() -> Any:
    return jsonify(_versions_body())


@bp.get("/v2/schemas/image")
def show_image_schema() -> Any:
    return jsonify(image_schema())


@bp.get("/v2/schemas/images")
def show_images_schema() -> Any:
    return jsonify(images_schema())


# ---- listing -------------------------------------------------------------------------------------------
@bp.get("/v2/images")
def list_images() -> Any:
    ctx = current.context()
    current.authorize("compute_actions:image:get_images", {"project_id": ctx.project_id})
    args = request.args
    visibility = parse_visibility(args)
    member_status = parse_member_status(args)
    sorting = parse_sorting(args)
    checks = parse_filters(args)
    limit = parse_limit(args["limit"]) if "limit" in args else LIMIT_DEFAULT
    store = current.service().store
    marker_id = args.get("marker")
    marker = None if marker_id is None else store.get_image(marker_id)
    if marker_id is not None and (marker is None or not rules.is_visible(ctx, marker)):
        raise _error(400, f"No image found with ID {marker_id}")

    def listed(image: Image) -> bool:
        return rules.is_listed(ctx, image, visibility, member_status) and all(check(image) for check in checks)

    if sorting == NEWEST_FIRST:  # the index's own order: read as far as the page takes
        # a project's caller lists no other project's private or community image but on asking for community
        own = None if ctx.is_admin or visibility in ("community", "all") else ctx.project_id
        try:
            page = store.page_images(limit, after=marker, keep=listed, listable_by=own, owners=owners_wanted(args))
        except MarkerNotFound:  # a marker visible but not listed (another's community image): every image
            try:
                page = store.page_images(limit, after=marker, keep=listed)
            except MarkerNotFound:  # deleted since it was read
                raise _error(400, f"No image found with ID {marker_id}") from None
    else:  # another order: every image, sorted here
        found = sorted((i for i in store.list_images() if listed(i)),
                       key=functools.cmp_to_key(lambda a, b: compare(a, b, sorting)))
        if marker is not None:
            found = [i for i in found if compare(i, marker, sorting) > 0]
        page = found[:limit]
    query = [(k, v) for k, v in args.items(multi=True) if k != "marker"]
    body: dict[str, Any] = {"images": [image_view(i) for i in page], "first": page_link(query),
                            "schema": "/v2/schemas/images"}
    if page and len(page) == limit:
        body["next"] = page_link([*query, ("marker", page[-1].id)])
    return jsonify(body)


# ---- one image ---------------------------------------------------------------------------------------
def _target(image: Image) -> dict[str, Any]:
    return {"project_id": image.owner, "owner": image.owner, "visibility": image.visibility}


def find_image(image_id: str) -> Image:
    """The image if the caller may see it (Glance's rule and ``get_image``), else 404."""
    ctx = current.context()
    image = current.service().store.get_image(image_id)
    if image is None or not rules.is_visible(ctx, image) or not current.allowed(
            "compute_actions:image:get_image", _target(image)):
        raise _not_found(image_id)
    return image


def _check_owner(image: Image, rule: str, verb: str) -> None:
    if not rules.is_owner(current.context(), image) or not current.allowed(rule, _target(image)):
        raise _error(403, f"You are not permitted to {verb} this image.")


@bp.get("/v2/images/<image_id>")
def show_image(image_id: str) -> Any:
    return jsonify(image_view(find_image(image_id)))


@bp.get("/v2/images/<image_id>/tasks")
def show_image_tasks(image_id: str) -> Any:
    """Glance 2.12's import tasks of an image. Backups are snapshots, never imports: always none."""
    find_image(image_id)
    return jsonify({"tasks": []})


@bp.delete("/v2/images/<image_id>")
def delete_image(image_id: str) -> Response:
    image = find_image(image_id)
    _check_owner(image, "compute_actions:image:delete_image", "delete")
    if image.protected:
        raise _error(403, f"Image {image_id} is protected and cannot be deleted.")
    if not current.service().store.delete_image(image_id):
        raise _not_found(image_id)
    return Response(status=204)


def _modify(image_id: str, change: Callable[[Image], None]) -> Image:
    """Check the caller, then apply ``change`` in one compare-and-set on the record."""
    image = find_image(image_id)
    _check_owner(image, "compute_actions:image:modify_image", "modify")
    change(image.model_copy(deep=True))  # validate on what was read: errors leave the record alone
    updated = current.service().store.update_image(image_id, change)
    if updated is None:
        raise _not_found(image_id)
    return updated


# ---- tags ------------------------------------------------------------------------------------------------
def _check_tag(tag: str) -> None:
    if not tag or len(tag) > 255:
        raise _error(400, f"Invalid tag: '{tag[:300]}'; a tag is 1 to 255 characters.")


@bp.put("/v2/images/<image_id>/tags/<path:tag>")
def add_tag(image_id: str, tag: str) -> Response:
    _check_tag(tag)

    def change(image: Image) -> None:
        if tag not in image.tags:
            if len(image.tags) >= TAG_QUOTA:
                raise _error(413, "Attempted to add more tags than allowed")
            image.tags.append(tag)

    _modify(image_id, change)
    return Response(status=204)


@bp.delete("/v2/images/<image_id>/tags/<path:tag>")
def delete_tag(image_id: str, tag: str) -> Response:
    def change(image: Image) -> None:
        if tag not in image.tags:
            raise _error(404, f"Tag {tag[:300]} not found")
        image.tags.remove(tag)

    _modify(image_id, change)
    return Response(status=204)


# ---- PATCH (JSON patch) -----------------------------------------------------------------------------------
@bp.patch("/v2/images/<image_id>")
def update_image(image_id: str) -> Any:
    schema_version = PATCH_TYPES.get(request.mimetype)
    if schema_version is None:
        raise _error(415, f"Unsupported Content-Type; use {next(iter(PATCH_TYPES))}")
    ops = parse_operations(bodies.json_body(), schema_version)
    updated = _modify(image_id, lambda image: apply_operations(image, ops, schema_version))
    return jsonify(image_view(updated))
