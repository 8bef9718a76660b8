"""Glance's JSON-patch image update: the operations, the attributes they may touch, and applying them.

Kept apart from the routes (api/views/glance_images.py) because both patch media types
(v2.0's ``{"add": path}`` and v2.1's ``{"op", "path"}``) are parsed and checked against
Glance's image schema here, before the route applies them in one compare-and-set.
"""
from __future__ import annotations

import re
from typing import Any

from api.errors import ApiError
from api.image_schemas import CONTAINER_FORMATS, DISK_FORMATS
from compute import images as rules
from compute.models import Image

PROPERTY_QUOTA = 128  # Glance [DEFAULT] image_property_quota
TAG_QUOTA = 128  # Glance [DEFAULT] image_tag_quota
READ_ONLY = frozenset({"id", "created_at", "updated_at", "status", "checksum", "os_hash_algo", "os_hash_value",
                       "size", "virtual_size", "direct_url", "self", "file", "schema", "locations", "stores"})
RESERVED = frozenset({"location", "deleted", "deleted_at"})
WRITABLE = ("name", "visibility", "protected", "os_hidden", "min_ram", "min_disk", "disk_format",
            "container_format", "owner", "tags")
CORE = READ_ONLY | frozenset(WRITABLE)
PATCH_TYPES = {"application/openstack-images-v2.1-json-patch": 10,
               "application/openstack-images-v2.0-json-patch": 4}


def _schema_error(value: Any, expected: str) -> ApiError:
    return ApiError(400, f"Provided object does not match schema 'image': {str(value)[:300]!r} is not {expected}")


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
        raise ApiError(413, "Attempted to add more tags than allowed")
    return list(dict.fromkeys(value))


def _pointer(raw: Any) -> str:
    """The one attribute a path names (Glance allows a depth of one outside ``locations``)."""
    if not isinstance(raw, str) or not raw.startswith("/"):
        raise ApiError(400, f"Pointer `{str(raw)[:300]}` does not start with \"/\".")
    if re.search(r"~[^01]", raw) or raw.endswith("~"):
        raise ApiError(400, f"Pointer `{raw[:300]}` contains \"~\" not part of a recognized escape sequence.")
    parts = raw[1:].split("/")
    if len(parts) != 1 or not parts[0].strip():
        raise ApiError(400, f"Invalid JSON pointer for this resource: '{raw[:300]}'")
    return parts[0].replace("~1", "/").replace("~0", "~").strip()


def parse_operations(body: Any, schema_version: int) -> list[tuple[str, str, Any]]:
    if not isinstance(body, list):
        raise ApiError(400, "Request body must be a JSON array of operation objects.")
    ops = []
    for raw in body:
        if not isinstance(raw, dict):
            raise ApiError(400, "Operations must be JSON objects.")
        if schema_version == 4:
            named = [k for k in ("add", "remove", "replace") if k in raw]
            if len(named) != 1:
                raise ApiError(400, 'Operation objects must contain exactly one member named "add", "remove", '
                                  'or "replace".')
            op, path = named[0], raw[named[0]]
        else:
            if "op" not in raw:
                raise ApiError(400, "Unable to find 'op' in JSON Schema change")
            if "path" not in raw:
                raise ApiError(400, "Unable to find 'path' in JSON Schema change")
            op, path = raw["op"], raw["path"]
            if op not in ("add", "remove", "replace"):
                raise ApiError(400, f"Invalid operation: `{str(op)[:300]}`")
        name = _pointer(path)
        if name in READ_ONLY or name.startswith("os_glance"):
            raise ApiError(403, f"Attribute '{name[:300]}' is read-only.")
        if name in RESERVED:
            raise ApiError(403, f"Attribute '{name[:300]}' is reserved.")
        if op != "remove":
            if "value" not in raw:
                raise ApiError(400, f'Operation "{op}" requires a member named "value".')
            value = _core_value(name, raw["value"]) if name in WRITABLE else raw["value"]
            if name not in WRITABLE and (not isinstance(value, str) or len(name) > 255):
                raise _schema_error(value, "of type 'string'")
        else:
            value = None
        ops.append((op, name, value))
    return ops


def apply_operations(image: Image, ops: list[tuple[str, str, Any]], schema_version: int) -> None:
    for op, name, value in ops:
        core = name in WRITABLE
        present = core or name in image.properties
        if op == "add" and schema_version == 4 and present:
            raise ApiError(409, f"Property {name} already present.")
        if op == "replace" and not present:
            raise ApiError(409, f"Property {name} does not exist.")
        if op == "remove":
            if core:
                raise ApiError(403, f"Property {name} may not be removed.")
            if name not in image.properties:
                raise ApiError(409, f"Property {name} does not exist.")
            del image.properties[name]
            continue
        if core:
            if name in ("disk_format", "container_format") and image.status != "queued" \
                    and getattr(image, name) != value:
                raise ApiError(403, f"Attribute {name} can be only replaced for a queued image.")
            setattr(image, name, value)
        else:
            image.properties[name] = value
    if len(image.properties) > PROPERTY_QUOTA:
        raise ApiError(413, "Attempted to add more properties than allowed")
