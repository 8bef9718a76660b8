"""injectNetworkInfo (nova admin_actions.py ``_inject_network_info``)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current
from api.actions import accepted, register
from api.lookup import authorized_server
from compute.actions import inject_network_info

INJECT_NETWORK_INFO_RULE = "os_compute_api:os-admin-actions:inject_network_info"


@register("injectNetworkInfo")
def inject_network_info_action(server_id: str, body: dict[str, Any]) -> Response:
    """Any value is accepted (the samples send null); a server without a host is a 409."""
    instance = authorized_server(server_id, INJECT_NETWORK_INFO_RULE)
    inject_network_info.inject_network_info(current.service(), current.context(), instance)
    return accepted()
