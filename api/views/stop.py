"""os-stop (nova servers.py ``_stop``): 202, then the flow; any value for the key (the clients send null)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import stop

STOP_RULE = "os_compute_api:servers:stop"

STOP_SCHEMA = schemas.action("os-stop", schemas.any_value())


@register("os-stop", STOP_SCHEMA)
def stop_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(STOP_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(STOP_RULE, instance)
    stop.stop(current.service(), current.context(), instance)
    return accepted()
