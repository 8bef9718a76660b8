"""The registry behind ``POST /servers/{id}/action``: one handler per action key.

A handler module in api/views registers itself with ``@register("<key>")``; api/app.py
imports every module there, so a new action is one new module. A key that is not
registered answers ``There is no such action`` before any lookup, as Nova's
``action_peek`` does. Each handler owns the rest of the order: schema (400), server
lookup (404), policy (403), the service call (409/503), then 202.

A handler may also say which body its schema accepts, for the OpenAPI document
(api/openapi.py): ``@register("<key>", schema=S)`` for every microversion, or
``schema_for=f`` with ``f(microversion) -> Validator | None`` (None: the value is not
validated at that version). The handler still validates; this only describes it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response

from api.microversions import APIVersion
from api.schemas import Validator

ActionHandler = Callable[[str, dict[str, Any]], Response]
SchemaFor = Callable[[APIVersion], Validator | None]

ACTIONS: dict[str, ActionHandler] = {}
ACTION_SCHEMAS: dict[str, SchemaFor] = {}


def register(key: str, schema: Validator | None = None, *,
             schema_for: SchemaFor | None = None) -> Callable[[ActionHandler], ActionHandler]:
    def decorator(handler: ActionHandler) -> ActionHandler:
        if key in ACTIONS and ACTIONS[key] is not handler:
            raise ValueError(f"action {key!r} is registered twice")
        ACTIONS[key] = handler
        if schema is not None:
            ACTION_SCHEMAS[key] = lambda mv: schema
        elif schema_for is not None:
            ACTION_SCHEMAS[key] = schema_for
        return handler

    return decorator


def accepted() -> Response:
    """202 with an empty body, the answer of every asynchronous action."""
    return Response(b"", status=202, mimetype="application/json")
