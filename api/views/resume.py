"""resume (nova suspend_server.py ``_resume``): 202, then the flow; any value for the key (the clients send null)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import resume

RESUME_RULE = "os_compute_api:os-suspend-server:resume"

RESUME_SCHEMA = schemas.action("resume", schemas.any_value())


@register("resume", RESUME_SCHEMA)
def resume_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(RESUME_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(RESUME_RULE, instance)
    resume.resume(current.service(), current.context(), instance)
    return accepted()
