"""revertResize (nova servers.py ``_revert_resize``): the server goes back to its source."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current
from api.actions import accepted, register
from api.lookup import authorized_server
from compute.actions import revert_resize

REVERT_RESIZE_RULE = "os_compute_api:servers:revert_resize"


@register("revertResize")
def revert_resize_action(server_id: str, body: dict[str, Any]) -> Response:
    instance = authorized_server(server_id, REVERT_RESIZE_RULE)
    revert_resize.revert_resize(current.service(), current.context(), instance)
    return accepted()
