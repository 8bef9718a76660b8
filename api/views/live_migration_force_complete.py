"""POST /servers/{id}/migrations/{id}/action ``force_complete`` (2.22+; a cold migration is a 400)."""
from __future__ import annotations

from flask import Blueprint, Response

from api import current, microversions, schemas
from api.actions import accepted
from api.bodies import MALFORMED, json_body
from api.errors import bad_request
from api.lookup import authorized_server
from api.views.server_migrations import RULE
from compute.actions import live_migration_force_complete

bp = Blueprint("live_migration_force_complete", __name__, url_prefix="/v2.1")

FORCE_COMPLETE_SCHEMA = schemas.action("force_complete", schemas.null())


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
    instance = authorized_server(server_id, RULE.format("force_complete"))
    live_migration_force_complete.force_complete(current.service(), current.context(), instance, migration_id)
    return accepted()
