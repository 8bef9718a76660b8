"""Admin actions: os-resetState, injectNetworkInfo, resetNetwork (nova admin_actions.py)."""
from __future__ import annotations

from typing import Any

from flask import Response

from api import current, schemas
from api.actions import accepted, register
from api.errors import GONE_MESSAGE, ApiError
from api.lookup import authorize_for_server, find_server

RESET_STATE_RULE = "os_compute_api:os-admin-actions:reset_state"
INJECT_NETWORK_INFO_RULE = "os_compute_api:os-admin-actions:inject_network_info"
RESET_NETWORK_RULE = "os_compute_api:os-admin-actions:reset_network"

RESET_STATE_SCHEMA = schemas.action(
    "os-resetState", schemas.obj({"state": schemas.enum("active", "error")}, required=["state"]))


@register("os-resetState")
def reset_state(server_id: str, body: dict[str, Any]) -> Response:
    """Synchronous: the state is written and the ``resetState`` action finished before the 202."""
    schemas.validate(RESET_STATE_SCHEMA, body)
    instance = find_server(server_id)
    authorize_for_server(RESET_STATE_RULE, instance)
    current.service().reset_state(current.context(), instance, body["os-resetState"]["state"])
    return accepted()


@register("injectNetworkInfo")
def inject_network_info(server_id: str, body: dict[str, Any]) -> Response:
    """Any value is accepted (the samples send null); a server without a host is a 409."""
    instance = find_server(server_id)
    authorize_for_server(INJECT_NETWORK_INFO_RULE, instance)
    current.service().inject_network_info(current.context(), instance)
    return accepted()


@register("resetNetwork")
def reset_network(server_id: str, body: dict[str, Any]) -> Response:
    """The seed's 202, or Nova's 410 since Wallaby (before any lookup) with ``[api] reset_network_removed``."""
    if current.settings().api.reset_network_removed:
        raise ApiError(410, GONE_MESSAGE)
    instance = find_server(server_id)
    authorize_for_server(RESET_NETWORK_RULE, instance)
    current.service().reset_network(current.context(), instance)
    return accepted()
