"""The registry behind ``POST /servers/{id}/action``: one handler per action key.

A handler module in api/views registers itself with ``@register("<key>")``; api/app.py
imports every module there, so a new action is one new module. A key that is not
registered answers ``There is no such action`` before any lookup, as Nova's
``action_peek`` does. Each handler owns the rest of the order: schema (400), server
lookup (404), policy (403), the service call (409/503), then 202.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response

ActionHandler = Callable[[str, dict[str, Any]], Response]

ACTIONS: dict[str, ActionHandler] = {}


def register(key: str) -> Callable[[ActionHandler], ActionHandler]:
    def decorator(handler: ActionHandler) -> ActionHandler:
        if key in ACTIONS and ACTIONS[key] is not handler:
            raise ValueError(f"action {key!r} is registered twice")
        ACTIONS[key] = handler
        return handler

    return decorator


def accepted() -> Response:
    """202 with an empty body, the answer of every asynchronous action."""
    return Response(b"", status=202, mimetype="application/json")
