"""os-migrateLive (nova migrate_server.py ``_migrate_live``), its body read per microversion.

| microversion | block_migration        | disk_over_commit | host            | force          |
| 2.1-2.24     | boolean-like, required | required         | fqdn/null, req. | not allowed    |
| 2.25-2.29    | boolean-like or "auto" | not allowed      | fqdn/null, req. | not allowed    |
| 2.30-2.67    | as 2.25                | not allowed      | fqdn/null, req. | boolean-like   |
| 2.68+        | as 2.25                | not allowed      | fqdn/null, req. | not allowed    |

A named host skips the scheduler below 2.30, and with ``force`` up to 2.67; otherwise the
scheduler checks it like any other candidate. Below 2.34 the reply waits for the conductor's
checks (Nova's RPC call): 400 with their reason when they fail.
"""
from __future__ import annotations

import functools
from typing import Any

from flask import Response

from api import current, microversions, schemas
from api.actions import accepted, register
from api.errors import UNEXPECTED_MESSAGE, ApiError, bad_request
from api.lookup import authorized_server
from compute.actions import live_migrate
from compute.actions.live_migrate import LiveMigrationRequest

MIGRATE_LIVE_RULE = "os_compute_api:os-migrate-server:migrate_live"
MIGRATE_LIVE_HOST_RULE = "os_compute_api:os-migrate-server:migrate_live:host"
TRUE_STRINGS = frozenset({"True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes"})
# What Nova answers when its RPC call to the conductor times out (expected_errors turns it into a 500).
TIMEOUT_MESSAGE = f"{UNEXPECTED_MESSAGE}\n<class 'oslo_messaging.exceptions.MessagingTimeout'>"

host_or_null = schemas.nullable(schemas.fqdn(), "string")


def boolean_or_auto() -> schemas.Validator:
    boolean = schemas.boolean_like()

    def check(value: Any, path: schemas.Path) -> None:
        if value != "auto":
            boolean(value, path)

    return schemas.described(check, {"anyOf": [{"const": "auto"}, schemas.json_schema_of(boolean)]})


@functools.cache
def body_schema(mv: microversions.APIVersion) -> schemas.Validator:
    """Built once per microversion: the validators are pure, and building them per request cost
    more than validating the body."""
    if mv < (2, 25):
        fields = {"block_migration": schemas.boolean_like(), "disk_over_commit": schemas.boolean_like(),
                  "host": host_or_null}
        return schemas.action("os-migrateLive", schemas.obj(fields, required=list(fields)))
    fields = {"block_migration": boolean_or_auto(), "host": host_or_null}
    required = list(fields)
    if (2, 30) <= mv <= (2, 67):
        fields["force"] = schemas.boolean_like()
    return schemas.action("os-migrateLive", schemas.obj(fields, required=required))


def as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else value in TRUE_STRINGS


def read_request(args: dict[str, Any], mv: microversions.APIVersion) -> LiveMigrationRequest:
    host = args.get("host") or None
    forced = as_bool(args.get("force", False))
    if (2, 30) <= mv <= (2, 67) and forced and host is None:
        raise bad_request("Can't force to a non-provided destination")
    block = args["block_migration"]
    return LiveMigrationRequest(
        host=host,
        block_migration=None if block == "auto" else as_bool(block),
        disk_over_commit=as_bool(args["disk_over_commit"]) if mv < (2, 25) else None,
        force=host is not None and (mv < (2, 30) or ((2, 30) <= mv <= (2, 67) and forced)),
        checks_before_reply=mv < (2, 34),
    )


@register("os-migrateLive", schema_for=body_schema)
def live_migrate_action(server_id: str, body: dict[str, Any]) -> Response:
    """Below 2.34 the reply waits (at most ``[api] rpc_response_timeout``, as Nova's RPC call)
    for the destination to be chosen and checked. A failed check is Nova's 400 with its message;
    a timeout is Nova's 500 after a MessagingTimeout, with an instance fault, while the migration
    itself carries on and ends in its record and instance action. From 2.34: 202 at once."""
    mv = microversions.current()
    schemas.validate(body_schema(mv), body)
    args = body["os-migrateLive"]
    instance = authorized_server(server_id, MIGRATE_LIVE_HOST_RULE if args.get("host") else MIGRATE_LIVE_RULE)
    request = read_request(args, mv)
    service = current.service()
    migration = live_migrate.live_migrate(service, current.context(), instance, request)
    if request.checks_before_reply:
        try:
            live_migrate.wait_for_prechecks(service, instance, migration,
                                              timeout=current.settings().api.rpc_response_timeout)
        except live_migrate.PrecheckTimeout:
            raise ApiError(500, TIMEOUT_MESSAGE) from None
    return accepted()
