"""Timestamps: the store keeps naive UTC ISO 8601 with microseconds (Nova's DB form).

Server and image views show them as ``2012-08-20T21:11:09Z`` (Nova ``utils.isotime``);
instance actions, migrations and services show the stored form unchanged.
"""
from __future__ import annotations

import datetime as dt
import re


def parse_timestamp(raw: str) -> dt.datetime | None:
    """ISO 8601 to naive UTC; None when unreadable."""
    text = raw.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):  # overflow: 9999-12-31T23:59:59-01:00 and the like
        return None
    return parsed


def stored_time(value: str | None) -> dt.datetime | None:
    return parse_timestamp(value) if value else None


def isotime(value: str | None) -> str | None:
    parsed = stored_time(value)
    return None if parsed is None else parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
