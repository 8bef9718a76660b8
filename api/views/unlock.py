"""unlock (nova lock_server.py ``_unlock``): done before the 202, recorded as action ``unlock``.

The ``unlock`` policy first; then, when the lock is held by the other party (a member
undoing an admin's lock, or an admin from another project undoing the owner's), also
``unlock:unlock_override`` (admin only by default): a 403 otherwise. Any value for the key.
"""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import unlock

UNLOCK_RULE = "os_compute_api:os-lock-server:unlock"
UNLOCK_OVERRIDE_RULE = "os_compute_api:os-lock-server:unlock:unlock_override"

UNLOCK_SCHEMA = schemas.action("unlock", schemas.any_value())


@register("unlock", UNLOCK_SCHEMA)
def unlock_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(UNLOCK_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(UNLOCK_RULE, instance)
    ctx = current.context()
    if not unlock.is_expected_locked_by(ctx, instance):
        authorize_for_server(UNLOCK_OVERRIDE_RULE, instance)
    unlock.unlock(current.service(), ctx, instance)
    return accepted()
