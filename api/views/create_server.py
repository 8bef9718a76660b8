"""POST /servers (nova servers.py ``create``): the 202 carries the id; the build runs in its flow.

Over quota (metadata items, instances, cores, ram) is Nova's 403; with an ``Idempotency-Key``
header a retry gets the first answer (the same server id and adminPass) and creates nothing.

``min_count``/``max_count`` make several servers (the 202 shows the first, or with
``return_reservation_id`` only ``{"reservation_id": "r-..."}``); ``host`` and
``hypervisor_hostname`` (2.74+, policy ``compute:servers:create:requested_destination``) ask the
scheduler for a host it still checks; ``hostname`` (2.90+; an FQDN from 2.94) names the guest.
"""
from __future__ import annotations

import functools
import secrets
import string as charsets
from typing import Any

from flask import Blueprint, jsonify

from api import current, links, microversions, schemas
from api.bodies import json_body
from api.errors import bad_request, forbidden
from api.idempotency import idempotent
from api.links import last_path_segment
from api.microversions import APIVersion
from api.policy import server_target
from api.schemas import digit_string_value
from compute import errors
from compute.actions import create_server

bp = Blueprint("create_server", __name__, url_prefix="/v2.1")

CREATE_RULE = "os_compute_api:servers:create"
FORCED_HOST_RULE = "os_compute_api:servers:create:forced_host"
REQUESTED_DESTINATION_RULE = "compute:servers:create:requested_destination"
REQUESTED_DESTINATION = APIVersion(2, 74)
HOSTNAME = APIVersion(2, 90)
FQDN_HOSTNAME = APIVersion(2, 94)

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

# nova/api/validation/parameter_types.py ``hostname`` (2.90-2.93; from 2.94 ``fqdn``).
_hostname = schemas.string(min_length=2, max_length=63, pattern=r"^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$")
_SERVER_PROPERTIES: dict[str, schemas.Validator] = {
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
}


@functools.cache
def create_schema(mv: APIVersion) -> schemas.Validator:
    """The body Nova accepts at ``mv`` (schemas/servers.py ``create``, ``create_v274``, ``_v290``, ``_v294``)."""
    properties = dict(_SERVER_PROPERTIES)
    if mv >= REQUESTED_DESTINATION:
        properties.update(host=schemas.fqdn(), hypervisor_hostname=schemas.fqdn())
    if mv >= HOSTNAME:
        properties["hostname"] = schemas.fqdn() if mv >= FQDN_HOSTNAME else _hostname
    return schemas.obj(
        {
            "server": schemas.obj(properties, required=["name", "flavorRef"]),
            "os:scheduler_hints": schemas.obj(additional=True),
            "OS-SCH-HNT:scheduler_hints": schemas.obj(additional=True),
        },
        required=["server"],
    )


CREATE_SCHEMA = create_schema(microversions.MAX_VERSION)

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


def count_of(value: Any) -> int:
    """A count the schema passed (a positive integer or digit string), capped where no request can
    go anyway (compute/actions/create_server.py), so a thousand-digit string is never ``int()``-ed."""
    cap = create_server.MAX_SERVERS_PER_REQUEST + 1
    number = value if isinstance(value, int) else digit_string_value(str(value))
    return cap if number is None else min(number, cap)


def _magnitude(value: Any) -> tuple[int, str]:
    """Orders digit strings (and integers) by value without converting them."""
    digits = str(value).lstrip("0") or "0"
    return len(digits), digits


def counts(server: dict[str, Any]) -> tuple[int, int]:
    """Nova: ``min_count`` defaults to 1 and ``max_count`` to ``min_count``; min above max is a 400."""
    raw_min = server.get("min_count", 1)
    raw_max = server.get("max_count", raw_min)
    if _magnitude(raw_min) > _magnitude(raw_max):
        raise bad_request("min_count must be <= max_count")
    return count_of(raw_min), count_of(raw_max)


def is_true(value: Any) -> bool:
    """A ``boolean_like`` value the schema passed (a bool or one of BOOLEAN_STRINGS)."""
    return str(value).lower() in ("true", "1", "on", "yes")


@bp.post("/servers")
@idempotent
def create_server_action() -> Any:
    body = json_body()
    schemas.validate(create_schema(microversions.current()), body)
    server = body["server"]
    ctx = current.context()
    min_count, max_count = counts(server)
    target = server_target(ctx.project_id, ctx.user_id)
    current.authorize(CREATE_RULE, target)
    availability_zone = server.get("availability_zone")
    forced = bool(availability_zone and availability_zone.partition(":")[2])
    if forced:
        current.authorize(FORCED_HOST_RULE, target)
    requested_host, requested_node = server.get("host"), server.get("hypervisor_hostname")
    if requested_host or requested_node:
        current.authorize(REQUESTED_DESTINATION_RULE, target)
        if forced:
            raise bad_request("One mechanism with host and/or hypervisor_hostname and another mechanism "
                              "with zone:host:node are mutually exclusive.")
    try:
        created = create_server.create_servers(
            current.service(), ctx,
            name=server["name"],
            flavor_id=last_path_segment(str(server["flavorRef"])),
            image_id=boot_image(server),
            availability_zone=availability_zone,
            metadata=server.get("metadata"),
            access_ip_v4=server.get("accessIPv4"),
            access_ip_v6=server.get("accessIPv6"),
            hostname=server.get("hostname"),
            requested_host=requested_host,
            requested_node=requested_node,
            min_count=min_count,
            max_count=max_count,
        )
    except errors.OverQuota as exc:  # nova servers.py: OverQuota -> HTTPForbidden
        raise forbidden(exc.message) from None
    if is_true(server.get("return_reservation_id", False)):
        response = jsonify({"reservation_id": created.reservation_id})
        response.status_code = 202
        return response
    instance = created.instances[0]
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
