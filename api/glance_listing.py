"""Glance's image-list query: its filters, its sort syntaxes and its marker paging.

Kept apart from the routes (api/views/glance_images.py) because it is the one part of the image
service that is a small query language: each parameter's parsing and Glance's error messages
for it, the comparison the sort and the marker share, and the ``first``/``next`` links.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from api.errors import ApiError
from api.timestamps import parse_timestamp, stored_time
from compute import images as rules
from compute.models import Image

LIMIT_DEFAULT = 25  # Glance [DEFAULT] limit_param_default
LIMIT_MAX = 1000  # Glance [DEFAULT] api_limit_max
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
IN_FILTERS = ("id", "name", "status", "owner", "container_format", "disk_format")
BOOLEAN_FILTERS = ("protected", "os_hidden")
TIME_FILTERS = ("created_at", "updated_at")
INT_FILTERS = ("min_ram", "min_disk")
NOT_FILTERS = ("limit", "marker", "sort", "sort_key", "sort_dir", "member_status", "visibility", "tag",
               "size_min", "size_max")
TIME_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")


def _sort_value(image: Image, key: str) -> Any:
    if key == "size":
        return image.size if image.status in ("active", "deactivated") else None
    if key in ("created_at", "updated_at"):
        return stored_time(getattr(image, key))
    return getattr(image, key)


def parse_limit(raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ApiError(400, "limit param must be an integer")
    if text.startswith("-") and text.strip("-0"):
        raise ApiError(400, "limit param must be positive")
    digits = text.lstrip("+-")
    return LIMIT_MAX if len(digits) > 9 else min(int(digits), LIMIT_MAX)


def _sort_key(raw: str) -> str:
    key = raw.strip()
    if key not in SORT_KEYS:
        raise ApiError(400, f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.")
    return key


def _sort_dir(raw: str) -> str:
    direction = raw.strip()
    if direction not in ("asc", "desc"):
        raise ApiError(400, f"Invalid sort direction: {direction}")
    return direction


def parse_sorting(args: MultiDict[str, str]) -> list[tuple[str, str]]:
    """Glance's two syntaxes, then its tie-breakers (created_at, id) in the first direction."""
    if "sort" in args:
        if "sort_key" in args or "sort_dir" in args:
            raise ApiError(400, "Old and new sorting syntax cannot be combined")
        pairs = []
        for part in args.get("sort", "").strip().split(","):
            key, _, direction = part.partition(":")
            pairs.append((_sort_key(key), _sort_dir(direction or "desc")))
        keys, dirs = [k for k, _ in pairs], [d for _, d in pairs]
    else:
        keys = [_sort_key(k) for k in args.getlist("sort_key")]
        dirs = [_sort_dir(d) for d in args.getlist("sort_dir")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise ApiError(400, "Number of sort dirs does not match the number of sort keys")
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
        raise ApiError(400, f"Invalid value '{raw}' for '{name}' filter. Valid values are 'true' or 'false'.")
    return value == "true"


def _size(name: str, raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"\d{1,18}", text):
        raise ApiError(400, f"Invalid value for {name}: '{raw}'; it must be a non-negative integer.")
    return int(text)


def _time_filter(name: str, raw: str) -> Callable[[Image], bool]:
    operator, sep, value = raw.partition(":")
    if not sep or operator not in TIME_OPERATORS:
        operator, value = "eq", raw
    moment = parse_timestamp(value)
    if moment is None:
        raise ApiError(400, f"Invalid value for {name}: '{raw}'; it must be [operator:]ISO 8601 time.")

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


def owners_wanted(args: MultiDict[str, str]) -> set[str] | None:
    """The projects an ``owner`` filter (one, or ``in:`` several) admits; None without one (or with two)."""
    return _one_of(args["owner"]) if len(args.getlist("owner")) == 1 else None


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


def parse_visibility(args: MultiDict[str, str]) -> str | None:
    raw = args.get("visibility")
    if raw is None:
        return None
    if raw not in (*rules.VISIBILITIES, "all"):
        raise ApiError(400, f"Invalid visibility value: {raw}")
    return raw


def parse_member_status(args: MultiDict[str, str]) -> str:
    raw = args.get("member_status", "accepted")
    if raw not in (*rules.MEMBER_STATUSES, "all"):
        raise ApiError(400, f"Invalid status: {raw}")
    return raw


def compare(a: Image, b: Image, sorting: list[tuple[str, str]]) -> int:
    for key, direction in sorting:
        left, right = _sort_value(a, key), _sort_value(b, key)
        if left == right:
            continue
        # None sorts first ascending, as NULL does in Glance's database
        smaller = left is None or (right is not None and left < right)
        result = -1 if smaller else 1
        return result if direction == "asc" else -result
    return 0


def page_link(query: list[tuple[str, str]]) -> str:
    return "/v2/images" + (f"?{urlencode(query)}" if query else "")
