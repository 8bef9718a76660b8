"""Request bodies: size, media type and JSON decoding, checked before any view logic.

As in nova/api/openstack/wsgi.py: a missing or ``text/plain`` Content-Type is read as
JSON, any other type than the two JSON ones is a 415, an empty body is ``None``, and
anything that is not JSON is ``Malformed request body``.
"""
from __future__ import annotations

import json
from typing import Any

from flask import g, request
from werkzeug.exceptions import ClientDisconnected

from api import current
from api.errors import TOO_LARGE_MESSAGE, ApiError, bad_request

JSON_TYPES = frozenset({"application/json", "application/vnd.openstack.compute+json"})
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
MALFORMED = "Malformed request body"
BODY_TIMEOUT_MESSAGE = "The request body was not received in time."
_UNSET = object()


def check_size(max_bytes: int) -> None:
    length = request.content_length
    if length is not None and length > max_bytes:
        raise ApiError(413, TOO_LARGE_MESSAGE)


def check_media_type() -> None:
    if request.method not in METHODS_WITH_BODY:
        return
    mimetype = request.mimetype
    if not mimetype or mimetype == "text/plain":
        return
    if mimetype not in JSON_TYPES:
        raise ApiError(415, "Unsupported Content-Type")


def read_limited(max_bytes: int) -> bytes:
    """Read the body, failing with 413 as soon as it passes ``max_bytes`` (chunked bodies have no length)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        try:
            chunk = request.stream.read(64 * 1024)
        except (OSError, ClientDisconnected):
            # The server's client timeout passed with the body unsent (workers/cli.py run_api), or
            # the client went away: a 408, not a 500.
            raise ApiError(408, BODY_TIMEOUT_MESSAGE) from None
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise ApiError(413, TOO_LARGE_MESSAGE)
        chunks.append(chunk)


def json_body() -> Any:
    """The decoded body, or None when it is empty."""
    cached = g.get("json_body", _UNSET)
    if cached is not _UNSET:
        return cached
    raw = read_limited(current.settings().api.max_body_bytes)
    if not raw:
        body = None
    else:
        try:
            body = json.loads(raw.decode("utf-8"))
            # JSON may spell a lone surrogate ("\ud800"), which no UTF-8 record can hold.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeError, RecursionError):
            raise bad_request(MALFORMED) from None
    g.json_body = body
    return body
