"""A server's live migrations (nova server_migrations.py): list and show (2.23+) the ones in
progress, force one to complete (2.22+), abort one (2.24+; queued and preparing too from 2.65).

Force-complete and abort each record their own instance action (``live_migration_force_complete``,
``live_migration_cancel``). DELETE on a cold migration that has not reached its copy cancels it
(action ``cold_migration_cancel``; Nova cannot do this); force-complete of one is a 400.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api import current, microversions, query, schemas
from api.actions import accepted
from api.bodies import MALFORMED, json_body
from api.errors import bad_request, not_found
from api.lookup import authorize_for_server, find_server
from api.migration_view import is_live_in_progress, server_migration_view
from compute import cold_migration, live_migration

bp = Blueprint("server_migrations", __name__, url_prefix="/v2.1")

RULE = "os_compute_api:servers:migrations:{}"
FORCE_COMPLETE_SCHEMA = schemas.action("force_complete", schemas.null())


def reject_unknown_query() -> None:
    if microversions.current() >= (2, 102):
        query.parse({}, strict=True)


@bp.get("/servers/<server_id>/migrations")
def list_server_migrations(server_id: str) -> Any:
    microversions.require((2, 23))
    reject_unknown_query()
    instance = find_server(server_id)
    authorize_for_server(RULE.format("index"), instance)
    mv = microversions.current()
    found = live_migration.in_progress_live_migrations(current.service(), instance)
    return jsonify({"migrations": [server_migration_view(m, mv) for m in found]})


@bp.get("/servers/<server_id>/migrations/<migration_id>")
def show_server_migration(server_id: str, migration_id: str) -> Any:
    microversions.require((2, 23))
    reject_unknown_query()
    instance = find_server(server_id)
    authorize_for_server(RULE.format("show"), instance)
    migration = live_migration.migration_of(current.service(), instance, migration_id)
    if migration is None:
        raise not_found(f"In-progress live migration {migration_id} is not found for server {instance.id}.")
    if migration.migration_type != live_migration.LIVE_MIGRATION:
        raise not_found(f"Migration {migration_id} for server {instance.id} is not live-migration.")
    if not is_live_in_progress(migration):
        raise not_found(f"Live migration {migration_id} for server {instance.id} is not in progress.")
    return jsonify({"migration": server_migration_view(migration, microversions.current())})


@bp.post("/servers/<server_id>/migrations/<migration_id>/action")
def server_migration_action(server_id: str, migration_id: str) -> Response:
    body = json_body()
    if not isinstance(body, dict) or len(body) != 1:
        raise bad_request(MALFORMED)
    (key,) = body
    if key != "force_complete":
        raise bad_request(f"There is no such action: {key}")
    microversions.require((2, 22))
    schemas.validate(FORCE_COMPLETE_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(RULE.format("force_complete"), instance)
    live_migration.force_complete(current.service(), current.context(), instance, migration_id)
    return accepted()


@bp.delete("/servers/<server_id>/migrations/<migration_id>")
def abort_server_migration(server_id: str, migration_id: str) -> Response:
    microversions.require((2, 24))
    instance = find_server(server_id)
    authorize_for_server(RULE.format("delete"), instance)
    migration = live_migration.migration_of(current.service(), instance, migration_id)
    if migration is not None and migration.migration_type == cold_migration.COLD_MIGRATION:
        cold_migration.cancel_migration(current.service(), current.context(), instance, migration_id)
        return accepted()
    abortable = (live_migration.ABORTABLE_FROM_2_65 if microversions.current() >= (2, 65)
                 else live_migration.ABORTABLE)
    live_migration.abort(current.service(), current.context(), instance, migration_id, abortable=abortable)
    return accepted()
