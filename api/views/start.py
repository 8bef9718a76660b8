"""os-start (nova servers.py ``_start``): 202, then the flow; any value for the key (the clients send null)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import start

START_RULE = "os_compute_api:servers:start"

START_SCHEMA = schemas.action("os-start", schemas.any_value())


@register("os-start", START_SCHEMA)
def start_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(START_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(START_RULE, instance)
    start.start(current.service(), current.context(), instance)
    return accepted()
