"""pause (nova pause_server.py ``_pause``): 202, then the flow; any value for the key (the clients send null)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import pause

PAUSE_RULE = "os_compute_api:os-pause-server:pause"

PAUSE_SCHEMA = schemas.action("pause", schemas.any_value())


@register("pause", PAUSE_SCHEMA)
def pause_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(PAUSE_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(PAUSE_RULE, instance)
    pause.pause(current.service(), current.context(), instance)
    return accepted()
