"""Hrefs in bodies and headers: ``[api] public_endpoint`` when set, else the request's own host.

``public_endpoint`` may be given with or without the ``/v2.1`` suffix; both mean the same root.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import request

from api import current

API_PREFIX = "/v2.1"


def root_url() -> str:
    configured = current.settings().api.public_endpoint
    base = configured if configured else request.host_url.rstrip("/") + request.script_root
    base = base.rstrip("/")
    if base.endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)]
    return base


def api_url(*parts: str) -> str:
    return "/".join([root_url() + API_PREFIX, *parts])


def bookmark_url(*parts: str) -> str:
    return "/".join([root_url(), *parts])


def self_and_bookmark(collection: str, item_id: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": api_url(collection, item_id)},
        {"rel": "bookmark", "href": bookmark_url(collection, item_id)},
    ]


def bookmark(collection: str, item_id: str) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": bookmark_url(collection, item_id)}]


def next_link(path: str, marker: str) -> dict[str, str]:
    """Nova's ``_get_next_link``: the request's query with ``marker`` replaced."""
    params = [(k, v) for k, v in request.args.items(multi=True) if k != "marker"]
    params.append(("marker", marker))
    return {"rel": "next", "href": f"{api_url(path)}?{urlencode(params)}"}


def last_path_segment(ref: str) -> str:
    """imageRef/flavorRef may be hrefs; Nova keeps the last path segment."""
    return ref.rstrip("/").rsplit("/", 1)[-1]
