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
form: ``{"message", "code": "404 Not Found", "title"}``).
"""
from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.datastructures import MultiDict

from api import auth, bodies, current
from api.errors import ApiError
from api.image_schemas import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    image_schema,
    images_schema,
)
from api.links import root_url
from api.timestamps import isotime, parse_timestamp, stored_time
from compute import images as rules
from compute.models import Image

bp = Blueprint("glance_images", __name__, url_prefix="/image")

LIMIT_DEFAULT = 25  # Glance [DEFAULT] limit_param_default
LIMIT_MAX = 1000  # Glance [DEFAULT] api_limit_max
PROPERTY_QUOTA = 128  # Glance [DEFAULT] image_property_quota
TAG_QUOTA = 128  # Glance [DEFAULT] image_tag_quota
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
IN_FILTERS = ("id", "name", "status", "owner", "container_format", "disk_format")
BOOLEAN_FILTERS = ("protected", "os_hidden")
TIME_FILTERS = ("created_at", "updated_at")
INT_FILTERS = ("min_ram", "min_disk")
NOT_FILTERS = ("limit", "marker", "sort", "sort_key", "sort_dir", "member_status", "visibility", "tag",
               "size_min", "size_max")
TIME_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
READ_ONLY = frozenset({"id", "created_at", "updated_at", "status", "checksum", "os_hash_algo", "os_hash_value",
                       "size", "virtual_size", "direct_url", "self", "file", "schema", "locations", "stores"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
WRITABLE = ("name", "visibility", "protected", "os_hidden", "min_ram", "min_disk", "disk_format",
            "container_format", "owner", "tags")
CORE = READ_ONLY | frozenset(WRITABLE)
PATCH_TYPES = {"application/openstack-images-v2.1-json-patch": 10,
               "application/openstack-images-v2.0-json-patch": 4}
VERSIONS = [("v2.7", "CURRENT")] + [(f"v2.{n}", "SUPPORTED") for n in range(6, -1, -1)]
PUBLIC_ENDPOINTS = frozenset({"glance_images.versions", "glance_images.versions_list"})
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
          413: "Request Entity Too Large", 415: "Unsupported Media Type"}


# ---- plumbing: who is calling, and Glance's error shape ------------------------------------------
@bp.before_request
def _authenticate() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    g.context = auth.context_builder(current.settings())(request.headers, g.request_id)


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


def _sort_value(image: Image, key: str) -> Any:
    if key == "size":
        return image.size if image.status in ("active", "deactivated") else None
    if key in ("created_at", "updated_at"):
        return stored_time(getattr(image, key))
    return getattr(image, key)


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


# ---- listing: query parsing ----------------------------------------------------------------------
def _parse_limit(raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise _error(400, "limit param must be an integer")
    if text.startswith("-") and text.strip("-0"):
        raise _error(400, "limit param must be positive")
    digits = text.lstrip("+-")
    return LIMIT_MAX if len(digits) > 9 else min(int(digits), LIMIT_MAX)


def _sort_key(raw: str) -> str:
    key = raw.strip()
    if key not in SORT_KEYS:
        raise _error(400, f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.")
    return key


def _sort_dir(raw: str) -> str:
    direction = raw.strip()
    if direction not in ("asc", "desc"):
        raise _error(400, f"Invalid sort direction: {direction}")
    return direction


def parse_sorting(args: MultiDict[str, str]) -> list[tuple[str, str]]:
    """Glance's two syntaxes, then its tie-breakers (created_at, id) in the first direction."""
    if "sort" in args:
        if "sort_key" in args or "sort_dir" in args:
            raise _error(400, "Old and new sorting syntax cannot be combined")
        pairs = []
        for part in args.get("sort", "").strip().split(","):
            key, _, direction = part.partition(":")
            pairs.append((_sort_key(key), _sort_dir(direction or "desc")))
        keys, dirs = [k for k, _ in pairs], [d for _, d in pairs]
    else:
        keys = [_sort_key(k) for k in args.getlist("sort_key")]
        dirs = [_sort_dir(d) for d in args.getlist("sort_dir")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise _error(400, "Number of sort dirs does not match the number of sort keys")
        keys = keys or ["created_at"]
        dirs = dirs or ["desc"]
        if len(dirs) == 1:
            dirs = dirs * len(keys)
    default_dir = dirs[0]
    for tie in ("created_at", "id"):
        if tie not in keys:
            keys.append(tie)
            dirs.append(default_dir)
    return list(zip(keys, dirs))


def _boolean(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false"):
        raise _error(400, f"Invalid value '{raw}' for '{name}' filter. Valid values are 'true' or 'false'.")
    return value == "true"


def _size(name: str, raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"\d{1,18}", text):
        raise _error(400, f"Invalid value for {name}: '{raw}'; it must be a non-negative integer.")
    return int(text)


def _time_filter(name: str, raw: str) -> Callable[[Image], bool]:
    operator, sep, value = raw.partition(":")
    if not sep or operator not in TIME_OPERATORS:
        operator, value = "eq", raw
    moment = parse_timestamp(value)
    if moment is None:
        raise _error(400, f"Invalid value for {name}: '{raw}'; it must be [operator:]ISO 8601 time.")

    def check(image: Image) -> bool:
        stamp = stored_time(getattr(image, name))
        if stamp is None:
            return False
        stamp = stamp.replace(microsecond=0)
        return {"gt": stamp > moment, "gte": stamp >= moment, "lt": stamp < moment, "lte": stamp <= moment,
                "eq": stamp == moment, "neq": stamp != moment}[operator]

    return check


def _one_of(raw: str) -> set[str]:
    return {part.strip() for part in raw[3:].split(",")} if raw.startswith("in:") else {raw}


def parse_filters(args: MultiDict[str, str]) -> list[Callable[[Image], bool]]:
    checks: list[Callable[[Image], bool]] = []
    tags = args.getlist("tag")
    if tags:
        checks.append(lambda i: all(t in i.tags for t in tags))
    for name, bound in (("size_min", 1), ("size_max", -1)):
        if name in args:
            limit = _size(name, args[name])
            checks.append(lambda i, limit=limit, bound=bound:
                          _sort_value(i, "size") is not None and bound * (_sort_value(i, "size") - limit) >= 0)
    hidden = _boolean("os_hidden", args["os_hidden"]) if "os_hidden" in args else False
    checks.append(lambda i: i.os_hidden == hidden)
    for key in args:
        if key in NOT_FILTERS or key == "os_hidden":
            continue
        raw = args[key]
        if key in IN_FILTERS:
            wanted = _one_of(raw)
            checks.append(lambda i, key=key, wanted=wanted: getattr(i, key) in wanted)
        elif key == "protected":
            flag = _boolean(key, raw)
            checks.append(lambda i, flag=flag: i.protected == flag)
        elif key in TIME_FILTERS:
            checks.append(_time_filter(key, raw))
        elif key in INT_FILTERS:
            checks.append(lambda i, key=key, raw=raw: str(getattr(i, key)) == raw.strip())
        else:
            checks.append(lambda i, key=key, raw=raw: i.properties.get(key) == raw)
    return checks


def _visibility_filter(args: MultiDict[str, str]) -> str | None:
    raw = args.get("visibility")
    if raw is None:
        return None
    if raw not in (*rules.VISIBILITIES, "all"):
        raise _error(400, f"Invalid visibility value: {raw}")
    return raw


def _member_status(args: MultiDict[str, str]) -> str:
    raw = args.get("member_status", "accepted")
    if raw not in (*rules.MEMBER_STATUSES, "all"):
        raise _error(400, f"Invalid status: {raw}")
    return raw


def _compare(a: Image, b: Image, sorting: list[tuple[str, str]]) -> int:
    for key, direction in sorting:
        left, right = _sort_value(a, key), _sort_value(b, key)
        if left == right:
            continue
        # None sorts first ascending, as NULL does in Glance's database
        smaller = left is None or (right is not None and left < right)
        result = -1 if smaller else 1
        return result if direction == "asc" else -result
    return 0


def _link(query: list[tuple[str, str]]) -> str:
    return "/v2/images" + (f"?{urlencode(query)}" if query else "")


@bp.get("/v2/images")
def list_images() -> Any:
    ctx = current.context()
    current.authorize("compute_actions:image:get_images", {"project_id": ctx.project_id})
    args = request.args
    visibility = _visibility_filter(args)
    member_status = _member_status(args)
    sorting = parse_sorting(args)
    checks = parse_filters(args)
    limit = _parse_limit(args["limit"]) if "limit" in args else LIMIT_DEFAULT
    every = current.service().store.list_images()
    found = [i for i in every
             if rules.is_listed(ctx, i, visibility, member_status) and all(check(i) for check in checks)]
    order = functools.cmp_to_key(lambda a, b: _compare(a, b, sorting))
    found.sort(key=order)
    marker_id = args.get("marker")
    if marker_id is not None:
        marker = next((i for i in every if i.id == marker_id and rules.is_visible(ctx, i)), None)
        if marker is None:
            raise _error(400, f"No image found with ID {marker_id}")
        found = [i for i in found if _compare(i, marker, sorting) > 0]
    page = found[:limit]
    query = [(k, v) for k, v in args.items(multi=True) if k != "marker"]
    body: dict[str, Any] = {"images": [image_view(i) for i in page], "first": _link(query),
                            "schema": "/v2/schemas/images"}
    if page and len(page) == limit:
        body["next"] = _link([*query, ("marker", page[-1].id)])
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
def _schema_error(value: Any, expected: str) -> ApiError:
    return _error(400, f"Provided object does not match schema 'image': {str(value)[:300]!r} is not {expected}")


def _core_value(name: str, value: Any) -> Any:
    """The value of a core attribute, as Glance's schema allows it."""
    if name in ("name", "owner"):
        if not isinstance(value, str) or len(value) > 255:
            raise _schema_error(value, "a string of at most 255 characters")
        return value
    if name == "visibility":
        if value not in rules.VISIBILITIES:
            raise _schema_error(value, f"one of {list(rules.VISIBILITIES)}")
        return value
    if name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise _schema_error(value, "of type 'boolean'")
        return value
    if name in ("min_ram", "min_disk"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
            raise _schema_error(value, "a non-negative integer")
        return value
    if name in ("disk_format", "container_format"):
        allowed = DISK_FORMATS if name == "disk_format" else CONTAINER_FORMATS
        if value not in allowed:
            raise _schema_error(value, f"one of {allowed}")
        return value
    # tags
    if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in value):
        raise _schema_error(value, "an array of strings of 1 to 255 characters")
    if len(value) > TAG_QUOTA:
        raise _error(413, "Attempted to add more tags than allowed")
    return list(dict.fromkeys(value))


def _pointer(raw: Any) -> str:
    """The one attribute a path names (Glance allows a depth of one outside ``locations``)."""
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise _error(400, f"Pointer `{str(raw)[:300]}` does not start with \"/\".")
    if re.search(r"~[^01]", raw) or raw.endswith("~"):
        raise _error(400, f"Pointer `{raw[:300]}` contains \"~\" not part of a recognized escape sequence.")
    parts = raw[1:].split("/")
    if len(parts) != 1 or not parts[0].strip():
        raise _error(400, f"Invalid JSON pointer for this resource: '{raw[:300]}'")
    return parts[0].replace("~1", "/").replace("~0", "~").strip()


def _operations(body: Any, schema_version: int) -> list[tuple[str, str, Any]]:
    if not isinstance(body, list):
        raise _error(400, "Request body must be a JSON array of operation objects.")
    ops = []
    for raw in body:
        if not isinstance(raw, dict):
            raise _error(400, "Operations must be JSON objects.")
        if schema_version == 4:
            named = [k for k in ("add", "remove", "replace") if k in raw]
            if len(named) != 1:
                raise _error(400, 'Operation objects must contain exactly one member named "add", "remove", '
                                  'or "replace".')
            op, path = named[0], raw[named[0]]
        else:
            if "op" not in raw:
                raise _error(400, "Unable to find 'op' in JSON Schema change")
            if "path" not in raw:
                raise _error(400, "Unable to find 'path' in JSON Schema change")
            op, path = raw["op"], raw["path"]
            if op not in ("add", "remove", "replace"):
                raise _error(400, f"Invalid operation: `{str(op)[:300]}`")
        name = _pointer(path)
        if name in READ_ONLY or name.startswith("os_glance"):
            raise _error(403, f"Attribute '{name[:300]}' is read-only.")
        if name in RESERVED:
            raise _error(403, f"Attribute '{name[:300]}' is reserved.")
        if op != "remove":
            if "value" not in raw:
                raise _error(400, f'Operation "{op}" requires a member named "value".')
            value = _core_value(name, raw["value"]) if name in WRITABLE else raw["value"]
            if name not in WRITABLE and (not isinstance(value, str) or len(name) > 255):
                raise _schema_error(value, "of type 'string'")
        else:
            value = None
        ops.append((op, name, value))
    return ops


def _apply(image: Image, ops: list[tuple[str, str, Any]], schema_version: int) -> None:
    for op, name, value in ops:
        core = name in WRITABLE
        present = core or name in image.properties
        if op == "add" and schema_version == 4 and present:
            raise _error(409, f"Property {name} already present.")
        if op == "replace" and not present:
            raise _error(409, f"Property {name} does not exist.")
        if op == "remove":
            if core:
                raise _error(403, f"Property {name} may not be removed.")
            if name not in image.properties:
                raise _error(409, f"Property {name} does not exist.")
            del image.properties[name]
            continue
        if core:
            if name in ("disk_format", "container_format") and image.status != "queued" \
                    and getattr(image, name) != value:
                raise _error(403, f"Attribute {name} can be only replaced for a queued image.")
            setattr(image, name, value)
        else:
            image.properties[name] = value
    if len(image.properties) > PROPERTY_QUOTA:
        raise _error(413, "Attempted to add more properties than allowed")


@bp.patch("/v2/images/<image_id>")
def update_image(image_id: str) -> Any:
    schema_version = PATCH_TYPES.get(request.mimetype)
    if schema_version is None:
        raise _error(415, f"Unsupported Content-Type; use {next(iter(PATCH_TYPES))}")
    ops = _operations(bodies.json_body(), schema_version)
    updated = _modify(image_id, lambda image: _apply(image, ops, schema_version))
    return jsonify(image_view(updated))
