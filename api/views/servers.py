"""Servers: create, list, list with details, show, delete (nova servers.py, the parts clients use).

Filters follow Nova: ``name`` is a regular expression, ``status`` is the API status,
``all_tenants`` needs the get_all_tenants policy, ``host``/``deleted`` are honoured for
admins only, and any other filter is ignored.
"""
from __future__ import annotations

import secrets
import string as charsets
from typing import Any

from flask import Blueprint, Response, jsonify

from api import current, links, paging, query, schemas
from api.bodies import json_body
from api.errors import bad_request
from api.lookup import authorize_for_server, find_server
from api.policy import server_target
from api.server_view import ServerViewBuilder, status_of, summary
from api.timestamps import stored_time
from compute.models import Instance
from compute.service import name_matches

bp = Blueprint("servers", __name__, url_prefix="/v2.1")

CREATE_RULE = "os_compute_api:servers:create"
FORCED_HOST_RULE = "os_compute_api:servers:create:forced_host"
DELETE_RULE = "os_compute_api:servers:delete"
SHOW_RULE = "os_compute_api:servers:show"
LIST_RULES = {False: "os_compute_api:servers:index", True: "os_compute_api:servers:detail"}
ALL_TENANTS_RULES = {False: "os_compute_api:servers:index:get_all_tenants",
                     True: "os_compute_api:servers:detail:get_all_tenants"}

_network = schemas.obj({
    "uuid": schemas.string(),
    "port": schemas.one_of(schemas.uuid_string(), schemas.null()),
    "fixed_ip": schemas.string(),
    "tag": schemas.string(min_length=1, max_length=60),
})
_positive = schemas.integer(minimum=1, digit_strings=True)
# OSC sends the image as a block device too: {"source_type": "image", "destination_type": "local", ...}.
_block_device = schemas.obj({
    "source_type": schemas.enum("blank", "image", "snapshot", "volume"),
    "destination_type": schemas.enum("local", "volume"),
    "uuid": schemas.string(min_length=1, max_length=255),
    "boot_index": schemas.one_of(schemas.integer(), schemas.string(), schemas.null()),
    "delete_on_termination": schemas.boolean_like(),
}, additional=True)

CREATE_SCHEMA = schemas.obj(
    {
        "server": schemas.obj(
            {
                "name": schemas.name(),
                "imageRef": schemas.one_of(schemas.uuid_string(), schemas.string(max_length=0)),
                "flavorRef": schemas.one_of(schemas.string(min_length=1, max_length=255),
                                            schemas.integer(minimum=0)),
                "availability_zone": schemas.name(),
                "metadata": schemas.metadata(),
                "networks": schemas.one_of(schemas.enum("none", "auto"), schemas.array(_network)),
                "min_count": _positive,
                "max_count": _positive,
                "adminPass": schemas.string(),
                "key_name": schemas.string(min_length=1, max_length=255),
                "security_groups": schemas.array(
                    schemas.obj({"name": schemas.string()}, required=["name"], additional=True)),
                "user_data": schemas.string(max_length=65535),
                "config_drive": schemas.boolean_like(),
                "accessIPv4": schemas.string(),
                "accessIPv6": schemas.string(),
                "OS-DCF:diskConfig": schemas.enum("AUTO", "MANUAL"),
                "description": schemas.one_of(schemas.string(max_length=255), schemas.null()),
                "tags": schemas.array(schemas.string(min_length=1, max_length=60), max_items=50),
                "block_device_mapping_v2": schemas.array(_block_device),
                "return_reservation_id": schemas.boolean_like(),
            },
            required=["name", "flavorRef"],
        ),
        "os:scheduler_hints": schemas.obj(additional=True),
        "OS-SCH-HNT:scheduler_hints": schemas.obj(additional=True),
    },
    required=["server"],
)

LIST_QUERY = {
    "name": query.text,
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

_PASSWORD_CHARS = charsets.ascii_letters + charsets.digits


def generate_password(length: int = 12) -> str:
    return "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(length))


def last_path_segment(ref: str) -> str:
    """imageRef/flavorRef may be hrefs; Nova keeps the last path segment."""
    return ref.rstrip("/").rsplit("/", 1)[-1]


def boot_image(server: dict[str, Any]) -> str | None:
    """The image to boot: ``imageRef``, or the image block device OSC sends beside it.

    There are no volumes here, so a block device that is (or makes) a volume is refused.
    """
    image_ref = server.get("imageRef") or None
    for device in server.get("block_device_mapping_v2", []):
        if device.get("source_type") != "image" or device.get("destination_type", "local") != "local":
            raise bad_request("Block device mappings other than the local boot image are not supported.")
        image_ref = image_ref or device.get("uuid")
    return last_path_segment(image_ref).lower() if image_ref else None


def count_is_one(server: dict[str, Any]) -> None:
    for key in ("min_count", "max_count"):
        if key in server and int(server[key]) != 1:
            raise bad_request(f"Only one server per request is supported: {key} must be 1.")


@bp.post("/servers")
def create_server() -> Any:
    body = json_body()
    schemas.validate(CREATE_SCHEMA, body)
    server = body["server"]
    ctx = current.context()
    current.authorize(CREATE_RULE, server_target(ctx.project_id, ctx.user_id))
    availability_zone = server.get("availability_zone")
    if availability_zone and availability_zone.partition(":")[2]:
        current.authorize(FORCED_HOST_RULE, server_target(ctx.project_id, ctx.user_id))
    count_is_one(server)
    instance = current.service().create_server(
        ctx,
        name=server["name"],
        flavor_id=last_path_segment(str(server["flavorRef"])),
        image_id=boot_image(server),
        availability_zone=availability_zone,
        metadata=server.get("metadata"),
    )
    security_groups = [{"name": g["name"]} for g in server.get("security_groups", [])] or [{"name": "default"}]
    response = jsonify({"server": {
        "id": instance.id,
        "links": links.self_and_bookmark("servers", instance.id),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": security_groups,
        "adminPass": server.get("adminPass") or generate_password(),
    }})
    response.status_code = 202
    response.headers["Location"] = links.api_url("servers", instance.id)
    return response


def _visible_servers(params: dict[str, Any], detailed: bool) -> list[Instance]:
    ctx = current.context()
    current.authorize(LIST_RULES[detailed], server_target(ctx.project_id, ctx.user_id))
    all_tenants = params.get("all_tenants", False)
    if all_tenants:
        current.authorize(ALL_TENANTS_RULES[detailed], server_target(ctx.project_id, ctx.user_id))
    deleted = ctx.is_admin and params.get("deleted", "").lower() in ("true", "1", "yes", "on")
    found = current.service().list_instances(ctx, all_projects=all_tenants, include_deleted=deleted)
    if deleted:
        found = [i for i in found if i.deleted]
    found = paging.after_marker(found, params.get("marker"), lambda i: i.id,
                                f"Marker {params.get('marker')} could not be found.")
    return [i for i in found if _matches(i, params, all_tenants, ctx.is_admin)]


def _matches(instance: Instance, params: dict[str, Any], all_tenants: bool, is_admin: bool) -> bool:
    if "name" in params and not name_matches(params["name"], instance.name):
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
    if since is not None and (stored_time(instance.updated_at) or since) < since:
        return False
    return True


def _list(detailed: bool) -> Any:
    params = query.parse(LIST_QUERY)
    limit = paging.effective_limit(params.get("limit"))
    page = _visible_servers(params, detailed)[:limit]
    if detailed:
        builder = ServerViewBuilder()
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
    instance = find_server(server_id)
    authorize_for_server(SHOW_RULE, instance)
    return jsonify({"server": ServerViewBuilder().full(instance)})


@bp.delete("/servers/<server_id>")
def delete_server(server_id: str) -> Response:
    instance = find_server(server_id)
    authorize_for_server(DELETE_RULE, instance)
    current.service().delete_server(current.context(), instance)
    return Response(status=204)

