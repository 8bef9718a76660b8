"""limit/marker paging shared by the list views (nova/api/openstack/common.py).

The marker is looked up among everything the caller could see, before filters, as
Nova's marker row is; ``limit`` is capped at ``[api] max_limit``; a ``next`` link is
given when the page is full.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from api import current, links
from api.errors import bad_request

T = TypeVar("T")


def effective_limit(requested: int | None) -> int:
    max_limit = current.settings().api.max_limit
    return max_limit if requested is None else min(requested, max_limit)


def after_marker(items: Sequence[T], marker: str | None, key: Callable[[T], str], message: str) -> list[T]:
    if marker is None:
        return list(items)
    for index, item in enumerate(items):
        if key(item) == marker:
            return list(items[index + 1:])
    raise bad_request(message)


def page_is_full(page: Sequence[object], limit: int) -> bool:
    return bool(limit) and len(page) == limit


def listing_body(collection: str, rendered: list[object], page: Sequence[T], limit: int, path: str,
                 marker_of: Callable[[T], str]) -> dict[str, object]:
    """``{collection: [...]}`` plus ``<collection>_links`` with the next page when this one is full."""
    body: dict[str, object] = {collection: rendered}
    if page_is_full(page, limit):
        body[f"{collection}_links"] = [links.next_link(path, marker_of(page[-1]))]
    return body
