"""createBackup (nova create_backup.py): the image record exists, queued, when the 202 leaves.

Below 2.45 the answer is an empty body with ``Location: <endpoint>/images/<id>`` (only when
rotation > 0, as in Nova); from 2.45 it is ``{"image_id": "<id>"}``.
"""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from api import current, links, microversions, schemas
from api.actions import accepted, register
from api.errors import forbidden
from api.lookup import authorize_for_server, find_server

CREATE_BACKUP_RULE = "os_compute_api:os-create-backup"
# Nova's quota default for metadata_items, enforced on backups only below 2.39.
METADATA_ITEMS_QUOTA = 128
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
def create_backup(server_id: str, body: dict[str, Any]) -> Response:
    schemas.validate(CREATE_BACKUP_SCHEMA, body)
    request = body["createBackup"]
    instance = find_server(server_id)
    authorize_for_server(CREATE_BACKUP_RULE, instance)
    mv = microversions.current()
    metadata = request.get("metadata") or {}
    if mv < (2, 39) and len(metadata) > METADATA_ITEMS_QUOTA:
        raise forbidden("Image metadata limit exceeded")
    # Any rotation at least the number of backups keeps them all; Redis ranks are 64-bit.
    rotation = min(int(request["rotation"]), MAX_ROTATION)
    image = current.service().create_backup(
        current.context(), instance, name=request["name"], backup_type=request["backup_type"],
        rotation=rotation, metadata=metadata)
    if mv >= (2, 45):
        response = jsonify({"image_id": image.id})
        response.status_code = 202
        return response
    response = accepted()
    if rotation > 0:
        response.headers["Location"] = links.api_url("images", image.id)
    return response
