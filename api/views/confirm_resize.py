"""confirmResize (nova servers.py ``_confirm_resize``): 204 at once; the flow cleans up the source."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current
from api.actions import register
from api.lookup import authorized_server
from compute.actions import confirm_resize

CONFIRM_RESIZE_RULE = "os_compute_api:servers:confirm_resize"


@register("confirmResize")
def confirm_resize_action(server_id: str, body: dict[str, Any]) -> Response:
    instance = authorized_server(server_id, CONFIRM_RESIZE_RULE)
    confirm_resize.confirm_resize(current.service(), current.context(), instance)
    return Response(status=204)
