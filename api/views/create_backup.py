"""createBackup (nova create_backup.py): the image record exists, queued, when the 202 leaves.

Below 2.45 the answer is an empty body with ``Location: <endpoint>/images/<id>`` (only when
rotation > 0, as in Nova); from 2.45 it is ``{"image_id": "<id>"}``.

Limits: more metadata items than the caller's ``metadata_items`` quota is Nova's 403
``Image metadata limit exceeded`` at every microversion (Nova leaves it to Glance from 2.39;
there is no Glance here), and a rotation above ``[quota] max_backup_rotation`` (Nova has no
cap) is a 400 worded like the schema's.
"""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from api import current, links, microversions, schemas
from api.actions import accepted, register
from api.errors import bad_request, forbidden
from api.lookup import authorized_server
from compute import errors
from compute.actions import create_backup

CREATE_BACKUP_RULE = "os_compute_api:os-create-backup"
# With ``max_backup_rotation = -1`` any rotation is accepted; one at least the number of backups keeps them all.
MAX_ROTATION = 2**31 - 1

CREATE_BACKUP_SCHEMA = schemas.action("createBackup", schemas.obj(
    {
        "name": schemas.name(),
        "backup_type": schemas.string(),
        "rotation": schemas.integer(minimum=0, digit_strings=True),
        "metadata": schemas.metadata(),
    },
    required=["name", "backup_type", "rotation"],
))


@register("createBackup")
def create_backup_action(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(CREATE_BACKUP_SCHEMA, body)
    request = body["createBackup"]
    rotation = bounded_rotation(request["rotation"], current.settings().quota.max_backup_rotation)
    instance = authorized_server(server_id, CREATE_BACKUP_RULE)
    mv = microversions.current()
    metadata = request.get("metadata") or {}
    try:
        image = create_backup.create_backup(
            current.service(), current.context(), instance, name=request["name"],
            backup_type=request["backup_type"], rotation=rotation, metadata=metadata)
    except errors.OverQuota as exc:
        raise forbidden(exc.message) from None
    if mv >= (2, 45):
        response = jsonify({"image_id": image.id})
        response.status_code = 202
        return response
    response = accepted()
    if rotation > 0:
        response.headers["Location"] = links.api_url("images", image.id)
    return response


def bounded_rotation(value: int | str, cap: int) -> int:
    """The schema passed an integer >= 0 or a digit string; above ``cap`` is a 400 (-1: no cap,
    clamped as before). A digit string is measured before ``int()``, which refuses 4300+ digits."""
    limit = MAX_ROTATION if cap < 0 else cap
    digits = (value.lstrip("0") or "0") if isinstance(value, str) else str(value)
    over = len(digits) > len(str(limit)) or int(digits) > limit
    if over and cap >= 0:
        raise bad_request(f"Invalid input for field/attribute rotation. Value: {value}. "
                          f"{value!r} is greater than the maximum of {cap}")
    return limit if over else int(digits)
