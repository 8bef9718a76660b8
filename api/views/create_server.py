"""POST /servers (nova servers.py ``create``): the 202 carries the id; the build runs in its flow.

Over quota (metadata items, instances, cores, ram) is Nova's 403; with an ``Idempotency-Key``
header a retry gets the first answer (the same server id and adminPass) and creates nothing.
"""
from __future__ import annotations

import secrets
import string as charsets
from typing import Any

from flask import Blueprint, jsonify

from api import current, links, schemas
from api.bodies import json_body
from api.errors import bad_request, forbidden
from api.idempotency import idempotent
from api.links import last_path_segment
from api.policy import server_target
from compute import errors
from compute.actions import create_server

bp = Blueprint("create_server", __name__, url_prefix="/v2.1")

CREATE_RULE = "os_compute_api:servers:create"
FORCED_HOST_RULE = "os_compute_api:servers:create:forced_host"

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

_PASSWORD_CHARS = charsets.ascii_letters + charsets.digits


def generate_password(length: int = 12) -> str:
    return "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(length))


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
    """The schema passed a positive integer or a digit string; the text is never ``int()``-ed
    (that refuses more than 4300 digits)."""
    for key in ("min_count", "max_count"):
        if key in server and str(server[key]).lstrip("0") != "1":
            raise bad_request(f"Only one server per request is supported: {key} must be 1.")


@bp.post("/servers")
@idempotent
def create_server_action() -> Any:
    body = json_body()
    schemas.validate(CREATE_SCHEMA, body)
    server = body["server"]
    ctx = current.context()
    current.authorize(CREATE_RULE, server_target(ctx.project_id, ctx.user_id))
    availability_zone = server.get("availability_zone")
    if availability_zone and availability_zone.partition(":")[2]:
        current.authorize(FORCED_HOST_RULE, server_target(ctx.project_id, ctx.user_id))
    count_is_one(server)
    try:
        instance = create_server.create_server(
            current.service(), ctx,
            name=server["name"],
            flavor_id=last_path_segment(str(server["flavorRef"])),
            image_id=boot_image(server),
            availability_zone=availability_zone,
            metadata=server.get("metadata"),
            access_ip_v4=server.get("accessIPv4"),
            access_ip_v6=server.get("accessIPv6"),
        )
    except errors.OverQuota as exc:  # nova servers.py: OverQuota -> HTTPForbidden
        raise forbidden(exc.message) from None
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
