"""unpause (nova pause_server.py ``_unpause``): 202, then the flow; any value for the key (the clients send null)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import unpause

UNPAUSE_RULE = "os_compute_api:os-pause-server:unpause"

UNPAUSE_SCHEMA = schemas.action("unpause", schemas.any_value())


@register("unpause", UNPAUSE_SCHEMA)
def unpause_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(UNPAUSE_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(UNPAUSE_RULE, instance)
    unpause.unpause(current.service(), current.context(), instance)
    return accepted()
