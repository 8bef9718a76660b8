"""Query-string parameters: parsed once, with Nova's 400 wording for bad values.

``parse`` takes a mapping of accepted names to parsers. Unknown names are ignored
unless ``strict`` (Nova's ``additionalProperties: false`` query schemas, e.g. instance
actions from 2.58); a repeated single-valued parameter is a 400 either way.
"""
from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from typing import Any

import re2
from flask import request

from api.errors import bad_request
from api.schemas import BOOLEAN_STRINGS, digit_string_value, is_digit_string
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
    value = digit_string_value(raw)
    if value is None:
        raise _invalid(name, raw, f"{raw!r} is too long")
    return value


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
    value = digit_string_value(raw)
    if value is None:
        raise bad_request(f"Invalid {name} filter [{raw}]")
    return value


# ---- the ``name`` filter -------------------------------------------------------------------
# Nova filters servers by ``name`` as a regular expression (REGEXP in its database). Client text
# is never given to Python's ``re``, whose backtracking can take minutes on ``(a+)+$`` and which
# raises OverflowError or RecursionError on some patterns: RE2 matches in time linear in the
# name, within a memory budget, and refuses what it cannot do that way (backreferences,
# look-around, huge repetitions), which then matches literally as an invalid pattern always has.
MAX_NAME_PATTERN_LENGTH = 1024  # characters; server names have at most 255
_RE2_MAX_MEM = 8 << 20  # bytes per compiled pattern (RE2's default)


def name_pattern(name: str, raw: str) -> str:
    """A query parser for the ``name`` filter: any text up to MAX_NAME_PATTERN_LENGTH, else 400."""
    if len(raw) > MAX_NAME_PATTERN_LENGTH:
        raise _invalid(name, raw, f"{raw!r} is too long")
    return raw


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # an invalid pattern is ordinary client input, not a log line
    options.never_capture = True  # only "does it match" is asked: RE2's DFA answers that alone
    options.max_mem = _RE2_MAX_MEM
    return options


@functools.lru_cache(maxsize=64)
def name_matcher(pattern: str) -> Callable[[str], bool]:
    """``pattern`` compiled once per distinct pattern; an invalid one is a substring test."""
    try:
        compiled = re2.compile(pattern, _re2_options())
    except (re2.error, UnicodeError, ValueError, TypeError):
        return lambda name: pattern in name

    def matches(name: str) -> bool:
        try:
            return compiled.search(name) is not None
        except UnicodeError:  # a name RE2 cannot encode: only a literal comparison is possible
            return pattern in name

    return matches


def name_matches(pattern: str, name: str) -> bool:
    """Nova treats the ``name`` filter as a regular expression; an invalid one matches literally."""
    if len(pattern) > MAX_NAME_PATTERN_LENGTH:  # name_pattern refuses these before any view asks
        return pattern in name
    return name_matcher(pattern)(name)
