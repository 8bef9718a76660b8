"""suspend (nova suspend_server.py ``_suspend``): 202, then the flow; any value for the key (the clients send null)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import suspend

SUSPEND_RULE = "os_compute_api:os-suspend-server:suspend"

SUSPEND_SCHEMA = schemas.action("suspend", schemas.any_value())


@register("suspend", SUSPEND_SCHEMA)
def suspend_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(SUSPEND_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(SUSPEND_RULE, instance)
    suspend.suspend(current.service(), current.context(), instance)
    return accepted()
