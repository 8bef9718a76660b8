"""``POST /v2.1/servers/{server_id}/action``: pick the handler from the body's only key.

With an ``Idempotency-Key`` header the action runs at most once per key (api/idempotency.py).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint

from api.actions import ACTIONS
from api.bodies import MALFORMED, json_body
from api.errors import bad_request
from api.idempotency import idempotent

bp = Blueprint("server_actions", __name__, url_prefix="/v2.1")


@bp.post("/servers/<server_id>/action")
@idempotent
def server_action(server_id: str) -> Any:
    body = json_body()
    if not isinstance(body, dict) or len(body) != 1:
        raise bad_request(MALFORMED)
    (key,) = body
    handler = ACTIONS.get(key)
    if handler is None:
        raise bad_request(f"There is no such action: {key}")
    return handler(server_id, body)
