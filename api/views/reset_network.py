"""resetNetwork (nova admin_actions.py ``_reset_network``, removed from Nova in 23.0.0)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current
from api.actions import accepted, register
from api.errors import GONE_MESSAGE, ApiError
from api.lookup import authorized_server
from compute.actions import reset_network

RESET_NETWORK_RULE = "os_compute_api:os-admin-actions:reset_network"


@register("resetNetwork")
def reset_network_action(server_id: str, body: dict[str, Any]) -> Response:
    """The seed's 202, or Nova's 410 since Wallaby (before any lookup) with ``[api] reset_network_removed``."""
    if current.settings().api.reset_network_removed:
        raise ApiError(410, GONE_MESSAGE)
    instance = authorized_server(server_id, RESET_NETWORK_RULE)
    reset_network.reset_network(current.service(), current.context(), instance)
    return accepted()
