"""os-resetState (nova admin_actions.py ``_reset_state``)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorized_server
from compute.actions import reset_state

RESET_STATE_RULE = "os_compute_api:os-admin-actions:reset_state"

RESET_STATE_SCHEMA = schemas.action(
    "os-resetState", schemas.obj({"state": schemas.enum("active", "error")}, required=["state"]))


@register("os-resetState", RESET_STATE_SCHEMA)
def reset_state_action(server_id: str, body: dict[str, Any]) -> Response:
    """Synchronous: the state is written and the ``resetState`` action finished before the 202."""
    schemas.validate(RESET_STATE_SCHEMA, body)
    instance = authorized_server(server_id, RESET_STATE_RULE)
    reset_state.reset_state(current.service(), current.context(), instance, body["os-resetState"]["state"])
    return accepted()
