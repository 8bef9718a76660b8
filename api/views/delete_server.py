"""DELETE /servers/{id} (nova servers.py ``delete``): 204; the delete itself runs in its flow."""
from __future__ import annotations

from flask import Blueprint, Response

from api import current
from api.lookup import authorized_server
from compute.actions import delete_server

bp = Blueprint("delete_server", __name__, url_prefix="/v2.1")

DELETE_RULE = "os_compute_api:servers:delete"


@bp.delete("/servers/<server_id>")
def delete_server_action(server_id: str) -> Response:
    instance = authorized_server(server_id, DELETE_RULE)
    delete_server.delete_server(current.service(), current.context(), instance)
    return Response(status=204)
