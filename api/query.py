"""Query-string parameters: parsed once, with Nova's 400 wording for bad values.

``parse`` takes a mapping of accepted names to parsers. Unknown names are ignored
unless ``strict`` (Nova's ``additionalProperties: false`` query schemas, e.g. instance
actions from 2.58); a repeated single-valued parameter is a 400 either way.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from flask import request

from api.errors import bad_request
from api.schemas import BOOLEAN_STRINGS, is_digit_string
from api.timestamps import parse_timestamp

Parser = Callable[[str, str], Any]

_TRUE_STRINGS = frozenset({"True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes"})


def _invalid(name: str, value: Any, message: str) -> Exception:
    return bad_request(f"Invalid input for query parameters {name}. Value: {value}. {message}")


def parse(parsers: Mapping[str, Parser], *, strict: bool = False) -> dict[str, Any]:
    args = request.args
    if strict:
        unexpected = [k for k in args.keys() if k not in parsers]
        if unexpected:
            listed = ", ".join(repr(k) for k in unexpected)
            verb = "was" if len(unexpected) == 1 else "were"
            raise bad_request(f"Additional properties are not allowed ({listed} {verb} unexpected)")
    found: dict[str, Any] = {}
    for name, parser in parsers.items():
        values = args.getlist(name)
        if not values:
            continue
        if len(values) > 1:
            raise _invalid(name, values, f"{values!r} is too long")
        found[name] = parser(name, values[0])
    return found


def text(name: str, raw: str) -> str:
    return raw


def non_negative_int(name: str, raw: str) -> int:
    if not is_digit_string(raw):
        raise _invalid(name, raw, f"{raw!r} does not match '^[0-9]*$'")
    return int(raw)


def timestamp(name: str, raw: str) -> dt.datetime:
    parsed = parse_timestamp(raw)
    if parsed is None:
        raise _invalid(name, raw, f"{raw!r} is not a 'date-time'")
    return parsed


def boolean(name: str, raw: str) -> bool:
    if raw == "":
        return True
    if raw not in BOOLEAN_STRINGS:
        raise _invalid(name, raw, f"{raw!r} is not one of {sorted(BOOLEAN_STRINGS)!r}")
    return raw in _TRUE_STRINGS


def minimum_filter(params: Mapping[str, Any], name: str) -> int | None:
    """A ``minRam``/``minDisk`` style filter: digits only, else Nova's 400."""
    raw = params.get(name)
    if raw is None:
        return None
    if not is_digit_string(raw):
        raise bad_request(f"Invalid {name} filter [{raw}]")
    return int(raw)
