"""Servers: list, list with details, show (nova servers.py, the parts clients use).

Create is api/views/create_server.py, delete api/views/delete_server.py.

Filters follow Nova: ``name`` is a regular expression, ``status`` is the API status,
``all_tenants`` needs the get_all_tenants policy, ``host``/``deleted`` are honoured for
admins only, ``reservation_id`` (a regular expression too, as in Nova's database query) for
everyone, and any other filter is ignored.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api import current, paging, query
from api.errors import bad_request
from api.links import last_path_segment
from api.lookup import authorized_server
from api.policy import server_target
from api.query import name_matches
from api.server_view import ServerViewBuilder, reservation_id_of, status_of, summary
from api.timestamps import stored_time
from compute.models import Instance
from compute.store import MarkerNotFound

bp = Blueprint("servers", __name__, url_prefix="/v2.1")

SHOW_RULE = "os_compute_api:servers:show"
LIST_RULES = {False: "os_compute_api:servers:index", True: "os_compute_api:servers:detail"}
ALL_TENANTS_RULES = {False: "os_compute_api:servers:index:get_all_tenants",
                     True: "os_compute_api:servers:detail:get_all_tenants"}

LIST_QUERY = {
    "name": query.name_pattern,
    "reservation_id": query.name_pattern,
    "status": query.text,
    "all_tenants": query.boolean,
    "project_id": query.text,
    "tenant_id": query.text,
    "host": query.text,
    "flavor": query.text,
    "image": query.text,
    "deleted": query.text,
    "limit": query.non_negative_int,
    "marker": query.text,
    "changes-since": query.timestamp,
}

def _visible_servers(params: dict[str, Any], detailed: bool, limit: int) -> list[Instance]:
    """One page: read from the host's (an admin's ``all_tenants`` with ``host``), the project's or every
    project's index, filters applied as it is read."""
    ctx = current.context()
    current.authorize(LIST_RULES[detailed], server_target(ctx.project_id, ctx.user_id))
    all_tenants = params.get("all_tenants", False)
    if all_tenants:
        current.authorize(ALL_TENANTS_RULES[detailed], server_target(ctx.project_id, ctx.user_id))
    deleted = ctx.is_admin and params.get("deleted", "").lower() in ("true", "1", "yes", "on")
    every_project = ctx.is_admin and all_tenants
    project = params.get("project_id") or params.get("tenant_id")
    marker = params.get("marker")
    store = current.service().store

    def keep(inst: Instance) -> bool:
        return _matches(inst, params, all_tenants, ctx.is_admin)

    try:
        if every_project and "host" in params:
            try:  # the host's index, unless the marker is a server elsewhere
                return store.page_instances(limit, project_id=project or None, deleted=deleted, marker=marker,
                                            keep=keep, host=params["host"])
            except MarkerNotFound:
                pass
        if every_project and project:
            try:  # one project's index, unless the marker is another project's server
                return store.page_instances(limit, project_id=project, deleted=deleted, marker=marker, keep=keep)
            except MarkerNotFound:
                pass
        return store.page_instances(limit, project_id=None if every_project else ctx.project_id,
                                    deleted=deleted, marker=marker, keep=keep)
    except MarkerNotFound:
        raise bad_request(f"Marker {marker} could not be found.") from None


def _matches(instance: Instance, params: dict[str, Any], all_tenants: bool, is_admin: bool) -> bool:
    if "name" in params and not name_matches(params["name"], instance.name):
        return False
    if "reservation_id" in params and not name_matches(params["reservation_id"], reservation_id_of(instance)):
        return False
    if "status" in params and status_of(instance).lower() != params["status"].lower():
        return False
    project = params.get("project_id") or params.get("tenant_id")
    if all_tenants and project and instance.project_id != project:
        return False
    if is_admin and "host" in params and instance.host != params["host"]:
        return False
    if "flavor" in params and instance.flavor.id != params["flavor"]:
        return False
    if "image" in params and (instance.image_id or "") != last_path_segment(params["image"]):
        return False
    since = params.get("changes-since")
    return since is None or (stored_time(instance.updated_at) or since) >= since


def _list(detailed: bool) -> Any:
    params = query.parse(LIST_QUERY)
    limit = paging.effective_limit(params.get("limit"))
    page = _visible_servers(params, detailed, limit)
    if detailed:
        builder = ServerViewBuilder()
        builder.prefetch(page)
        items = [builder.full(i) for i in page]
    else:
        items = [summary(i) for i in page]
    return jsonify(paging.listing_body("servers", items, page, limit,
                                       "servers/detail" if detailed else "servers", lambda i: i.id))


@bp.get("/servers")
def list_servers() -> Any:
    return _list(detailed=False)


@bp.get("/servers/detail")
def list_servers_detail() -> Any:
    return _list(detailed=True)


@bp.get("/servers/<server_id>")
def show_server(server_id: str) -> Any:
    instance = authorized_server(server_id, SHOW_RULE)
    return jsonify({"server": ServerViewBuilder().full(instance, show_server_groups=True)})
