"""A server's live migrations in progress (nova server_migrations.py ``index``/``show``, 2.23+).

Force-complete is api/views/live_migration_force_complete.py; abort (and the cancel of a
cold migration) is api/views/live_migration_abort.py.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api import current, microversions, query
from api.errors import not_found
from api.lookup import authorized_server
from api.migration_view import is_live_in_progress, server_migration_view
from compute.migrations import in_progress_live_migrations, server_migration
from compute.states import MigrationType

bp = Blueprint("server_migrations", __name__, url_prefix="/v2.1")

RULE = "os_compute_api:servers:migrations:{}"

def reject_unknown_query() -> None:
    if microversions.current() >= (2, 102):
        query.parse({}, strict=True)


@bp.get("/servers/<server_id>/migrations")
def list_server_migrations(server_id: str) -> Any:
    microversions.require((2, 23))
    reject_unknown_query()
    instance = authorized_server(server_id, RULE.format("index"))
    mv = microversions.current()
    found = in_progress_live_migrations(current.service().store, instance)
    return jsonify({"migrations": [server_migration_view(m, mv) for m in found]})


@bp.get("/servers/<server_id>/migrations/<migration_id>")
def show_server_migration(server_id: str, migration_id: str) -> Any:
    microversions.require((2, 23))
    reject_unknown_query()
    instance = authorized_server(server_id, RULE.format("show"))
    migration = server_migration(current.service().store, instance, migration_id)
    if migration is None:
        raise not_found(f"In-progress live migration {migration_id} is not found for server {instance.id}.")
    if migration.migration_type != MigrationType.LIVE:
        raise not_found(f"Migration {migration_id} for server {instance.id} is not live-migration.")
    if not is_live_in_progress(migration):
        raise not_found(f"Live migration {migration_id} for server {instance.id} is not in progress.")
    return jsonify({"migration": server_migration_view(migration, microversions.current())})
