"""migrate (nova migrate_server.py ``_migrate``): a cold migration, asynchronous from the 202.

Below 2.56 the value of ``migrate`` is not validated and a host in it is not read.
From 2.56 it is null or ``{"host": <fqdn or null>}``: novaclient sends ``{}``, the SDK
``null``. A named host needs ``...:migrate:host``.
"""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, microversions, schemas
from api.actions import accepted, register
from api.lookup import authorized_server
from compute.actions import migrate

MIGRATE_RULE = "os_compute_api:os-migrate-server:migrate"
MIGRATE_HOST_RULE = "os_compute_api:os-migrate-server:migrate:host"

MIGRATE_SCHEMA_V256 = schemas.action(
    "migrate", schemas.nullable(schemas.obj({"host": schemas.nullable(schemas.fqdn(), "string")}), "object"))


@register("migrate", schema_for=lambda mv: MIGRATE_SCHEMA_V256 if mv >= (2, 56) else None)
def migrate_action(server_id: str, body: dict[str, Any]) -> Response:
    host = None
    if microversions.current() >= (2, 56):
        schemas.validate(MIGRATE_SCHEMA_V256, body)
        host = (body["migrate"] or {}).get("host")
    instance = authorized_server(server_id, MIGRATE_HOST_RULE if host else MIGRATE_RULE)
    migrate.migrate(current.service(), current.context(), instance, host=host)
    return accepted()
