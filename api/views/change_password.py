"""changePassword (nova admin_password.py): ACTIVE servers only, locked ones only for admins."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorized_server
from compute.actions import change_password

CHANGE_PASSWORD_RULE = "os_compute_api:os-admin-password"

CHANGE_PASSWORD_SCHEMA = schemas.action(
    "changePassword", schemas.obj({"adminPass": schemas.string()}, required=["adminPass"]))


@register("changePassword", CHANGE_PASSWORD_SCHEMA)
def change_password_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(CHANGE_PASSWORD_SCHEMA, body)
    instance = authorized_server(server_id, CHANGE_PASSWORD_RULE)
    change_password.change_password(current.service(), current.context(), instance,
                                    body["changePassword"]["adminPass"])
    return accepted()
