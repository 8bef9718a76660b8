"""lock (nova lock_server.py ``_lock``): done before the 202, recorded as action ``lock``.

Below 2.73 the value of ``lock`` may be anything; from 2.73 it is null or
``{"locked_reason": "<1-255 characters>"}`` and the reason is kept (``locked_reason`` in
the server view from 2.73).
"""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, microversions, schemas
from api.actions import accepted, register
from api.lookup import authorize_for_server, find_server
from compute.actions import lock

LOCK_RULE = "os_compute_api:os-lock-server:lock"

LOCK_SCHEMA = schemas.action("lock", schemas.any_value())
LOCK_SCHEMA_2_73 = schemas.action("lock", schemas.nullable(
    schemas.obj({"locked_reason": schemas.string(min_length=1, max_length=255)}), "object"))


def lock_schema(mv: microversions.APIVersion) -> schemas.Validator:
    return LOCK_SCHEMA_2_73 if mv >= (2, 73) else LOCK_SCHEMA


@register("lock", schema_for=lock_schema)
def lock_action(server_id: str, body: dict[str, Any]) -> Response:
    mv = microversions.current()
    schemas.validate(lock_schema(mv), body)
    instance = find_server(server_id)
    authorize_for_server(LOCK_RULE, instance)
    reason = body["lock"].get("locked_reason") if mv >= (2, 73) and body["lock"] is not None else None
    lock.lock(current.service(), current.context(), instance, reason=reason)
    return accepted()
