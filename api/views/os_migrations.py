"""GET /os-migrations (nova migrations.py): every migration of every type, filtered.

Filters: ``host`` (source or destination; it wins over ``source_compute``), ``source_compute``,
``status``, ``migration_type``, ``instance_uuid``, ``hidden``; from 2.59 ``limit``, ``marker``
(a migration uuid) and ``changes-since``, newest first, unknown parameters a 400; from 2.66
``changes-before``; from 2.80 ``user_id`` and ``project_id``. A page is read from the migrations index
(every project's, or the caller's project's), newest (highest id) first, filtered as it is read. Below 2.59 unknown parameters,
and the paging ones, are ignored. Hidden migrations are never shown. Callers that are not
admins (when a policy file lets them in) see only their own project's migrations.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, jsonify

from api import current, links, microversions, paging, query
from api.errors import bad_request
from api.migration_view import migration_view
from api.timestamps import stored_time
from compute.models import Migration
from compute.store import MarkerNotFound

bp = Blueprint("os_migrations", __name__, url_prefix="/v2.1")

INDEX_RULE = "os_compute_api:os-migrations:index"
EQUALITY_FILTERS = ("status", "migration_type", "instance_uuid", "user_id", "project_id")
TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})


def query_parsers(mv: microversions.APIVersion) -> dict[str, query.Parser]:
    parsers: dict[str, query.Parser] = {name: query.text for name in (
        "hidden", "host", "instance_uuid", "source_compute", "status", "migration_type")}
    if mv >= (2, 59):
        parsers.update({"limit": query.non_negative_int, "marker": query.text, "changes-since": query.timestamp})
    if mv >= (2, 66):
        parsers["changes-before"] = query.timestamp
    if mv >= (2, 80):
        parsers.update({"user_id": query.text, "project_id": query.text})
    return parsers


def matches(migration: Migration, params: dict[str, Any]) -> bool:
    if "host" in params:
        if params["host"] not in (migration.source_compute, migration.dest_compute):
            return False
    elif "source_compute" in params and params["source_compute"] != migration.source_compute:
        return False
    if any(name in params and params[name] != getattr(migration, name) for name in EQUALITY_FILTERS):
        return False
    if "hidden" in params and migration.hidden != (params["hidden"].lower() in TRUE_STRINGS):
        return False
    return updated_within(migration, params.get("changes-since"), params.get("changes-before"))


def updated_within(migration: Migration, since: dt.datetime | None, before: dt.datetime | None) -> bool:
    updated = stored_time(migration.updated_at)
    if updated is None:
        return since is None and before is None
    return (since is None or updated >= since) and (before is None or updated <= before)


@bp.get("/os-migrations")
def list_migrations() -> Any:
    mv = microversions.current()
    params = query.parse(query_parsers(mv), strict=mv >= (2, 59))
    since, before = params.get("changes-since"), params.get("changes-before")
    if since is not None and before is not None and before < since:
        raise bad_request("The value of changes-since must be less than or equal to changes-before.")
    ctx = current.context()
    current.authorize(INDEX_RULE, {"project_id": ctx.project_id, "user_id": ctx.user_id})
    store = current.service().store
    project = None if ctx.is_admin else ctx.project_id

    def keep(migration: Migration) -> bool:
        return not migration.hidden and matches(migration, params)

    if mv < (2, 59):  # no paging before 2.59: every migration the caller may see
        found = [m for m in store.list_migrations() if (project is None or m.project_id == project) and keep(m)]
        return jsonify({"migrations": [migration_view(m, mv) for m in found]})
    marker = params.get("marker")
    limit = paging.effective_limit(params.get("limit"))
    try:
        found = store.page_migrations(limit, project_id=project, marker=marker, keep=keep)
    except MarkerNotFound:
        raise bad_request(f"Marker {marker} could not be found.") from None
    body: dict[str, Any] = {}
    if paging.page_is_full(found, limit):
        body["migrations_links"] = [links.next_link("os-migrations", found[-1].uuid)]
    return jsonify({"migrations": [migration_view(m, mv) for m in found], **body})
