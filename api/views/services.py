"""Compute services: one ``nova-compute`` per fleet host (nova services.py).

``PUT /os-services/{action}`` (``enable``, ``disable``, ``disable-log-reason``, from 2.11
``force-down``; the body names host and binary) below 2.53, ``PUT /os-services/{uuid}`` from
2.53; ``DELETE /os-services/{id}`` (integer id below 2.53, uuid from 2.53). The checks run in
Nova's order: body schema, then (2.53) the uuid, policy, lookup, then what the change needs.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api import current, ids, microversions, query, schemas
from api.bodies import json_body
from api.errors import bad_request, not_found
from compute import errors, services
from compute.models import Host

bp = Blueprint("services", __name__, url_prefix="/v2.1")

LIST_RULE = "os_compute_api:os-services:list"
UPDATE_RULE = "os_compute_api:os-services:update"
DELETE_RULE = "os_compute_api:os-services:delete"
BINARY = services.BINARY
FORCED_DOWN = (2, 11)
UUID_IDS = (2, 53)
_TRUE = frozenset({"True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes"})

_host = schemas.fqdn()
_text = schemas.string(min_length=1, max_length=255)
LEGACY_SCHEMA = schemas.obj({"host": _host, "binary": _text, "disabled_reason": _text}, required=["host", "binary"])
LEGACY_SCHEMA_211 = schemas.obj({"host": _host, "binary": _text, "disabled_reason": _text,
                                 "forced_down": schemas.boolean_like()}, required=["host", "binary"])
SCHEMA_253 = schemas.obj({"status": schemas.enum("enabled", "disabled"), "disabled_reason": _text,
                          "forced_down": schemas.boolean_like()})


def service_view(host: Host, mv: microversions.APIVersion) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": host.service_uuid if mv >= UUID_IDS else host.service_id,
        "binary": BINARY,
        "disabled_reason": host.disabled_reason,
        "host": host.name,
        "state": "up" if host.service_is_up else "down",
        "status": "enabled" if host.enabled else "disabled",
        "updated_at": host.updated_at,
        "zone": host.availability_zone,
    }
    if mv >= FORCED_DOWN:
        view["forced_down"] = host.forced_down
    return view


def as_bool(value: Any) -> bool:
    """A value the schema let through as Nova's boolean (true/false or one of its strings)."""
    return value if isinstance(value, bool) else value in _TRUE


def hosts(name: str | None = None) -> list[Host]:
    """Every host by service id (records only, no usage); with ``name`` just that one."""
    store = current.service().store
    if name is not None:
        found = store.get_host(name)
        return [found] if found is not None else []
    return sorted(store.list_hosts(), key=lambda h: h.service_id)


def find_service(wanted: int | str) -> Host | None:
    """The host behind a service id (an integer below 2.53, a uuid from): one lookup, then its record."""
    store = current.service().store
    name = (store.host_by_service_uuid(wanted) if isinstance(wanted, str)
            else store.host_by_hypervisor_id(service_id=wanted))
    host = store.get_host(name) if name is not None else None
    if host is None or (host.service_uuid if isinstance(wanted, str) else host.service_id) != wanted:
        return None
    return host


@bp.get("/os-services")
def list_services() -> Any:
    mv = microversions.current()
    params = query.parse({"host": query.text, "binary": query.text}, strict=mv >= (2, 75))
    ctx = current.context()
    current.authorize(LIST_RULE, {"project_id": ctx.project_id, "user_id": ctx.user_id})
    found = [
        h for h in hosts(params.get("host"))
        if params.get("host", h.name) == h.name and params.get("binary", BINARY) == BINARY
    ]
    return jsonify({"services": [service_view(h, mv) for h in found]})


@bp.put("/os-services/<service_ref>")
def update_service(service_ref: str) -> Any:
    mv = microversions.current()
    body = json_body()
    schemas.validate(SCHEMA_253 if mv >= UUID_IDS else LEGACY_SCHEMA_211 if mv >= FORCED_DOWN else LEGACY_SCHEMA,
                     body)
    if mv >= UUID_IDS:
        return update_by_uuid(service_ref, body, mv)
    return update_by_action(service_ref, body, mv)


def update_by_uuid(service_ref: str, body: dict[str, Any], mv: microversions.APIVersion) -> Any:
    """2.53+: status and/or forced_down of the service the path names; the whole record comes back."""
    wanted = ids.uuid_id(service_ref)
    current.authorize(UPDATE_RULE, {})
    host = find_service(wanted)
    if host is None:
        raise not_found(f"Service {service_ref} could not be found.")
    changes: dict[str, Any] = {}
    if body.get("status") == "enabled":
        if body.get("disabled_reason"):
            raise bad_request("Specifying 'disabled_reason' with status 'enabled' is invalid.")
        changes.update(enabled=True, disabled_reason=None)
    elif body.get("status") == "disabled":
        changes.update(enabled=False, disabled_reason=body.get("disabled_reason"))
    if "forced_down" in body:
        changes["forced_down"] = as_bool(body["forced_down"])
    if not changes:
        raise bad_request("No updates were requested. Fields 'status' or 'forced_down' should be specified.")
    updated = current.service().store.update_host(host.name, **changes)
    return jsonify({"service": service_view(updated, mv)})


def update_by_action(action: str, body: dict[str, Any], mv: microversions.APIVersion) -> Any:
    """Below 2.53: the action is the path, the service is ``host`` + ``binary`` in the body."""
    current.authorize(UPDATE_RULE, {})
    actions = {"enable", "disable", "disable-log-reason"} | ({"force-down"} if mv >= FORCED_DOWN else set())
    if action not in actions:
        raise not_found("Unknown action")
    host_name, binary = body["host"], body["binary"]
    answer: dict[str, Any] = {"host": host_name, "binary": binary}
    if action == "force-down":
        if "forced_down" not in body:
            raise bad_request("Missing forced_down field")
        changes: dict[str, Any] = {"forced_down": as_bool(body["forced_down"])}
        answer["forced_down"] = changes["forced_down"]
    elif action == "enable":
        changes = {"enabled": True, "disabled_reason": None}
        answer["status"] = "enabled"
    else:
        reason = None
        if action == "disable-log-reason":
            if "disabled_reason" not in body:
                raise bad_request("Missing disabled reason field")
            reason = body["disabled_reason"]
        changes = {"enabled": False, "disabled_reason": reason}
        answer["status"] = "disabled"
        if reason:
            answer["disabled_reason"] = reason
    if binary != BINARY:
        raise bad_request(f"Updating a {binary} service is not supported. Only nova-compute services can be updated.")
    try:
        current.service().store.update_host(host_name, **changes)
    except errors.NotFound:
        raise not_found(f"Host '{host_name}' is not mapped to any cell") from None
    return jsonify({"service": answer})


@bp.delete("/os-services/<service_ref>")
def delete_service(service_ref: str) -> Response:
    """Policy first, then the id's form (uuid from 2.53, else an integer), then the service."""
    mv = microversions.current()
    current.authorize(DELETE_RULE, {})
    wanted: int | str = ids.uuid_id(service_ref) if mv >= UUID_IDS else ids.integer_id(service_ref)
    host = find_service(wanted)
    if host is None:
        raise not_found(f"Service {service_ref} not found.")
    services.delete_service(current.service().store, host.name)
    return Response(status=204)
