"""Fleet control: an admin-only extension, deliberately outside Nova's /v2.1 tree.

``/compute-actions/v1/fleet``: list the simulated hosts, add and clear fault rules, take a host
down or up, read and set the time scale. Every change is a store write that the simulator of
every worker reads at its next operation or check (compute/fleet_control.py), so it works the
same against ``compute-actions dev`` and a production deployment. ``compute-actions fleet ...``
(workers/fleet_cli.py) is its client.

Not microversioned. Authenticated as the /v2.1 routes are (noauth2 tokens, or the headers
keystonemiddleware sets), guarded by policy ``compute_actions:fleet`` (default admin only),
and every refusal is a Nova fault body (400 for bad input, never a 500).
"""
from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from api import auth, bodies, current, schemas
from api.bodies import json_body
from api.errors import bad_request
from api.schemas import Path, SchemaError
from compute import fleet_control
from compute.models import Host, HostUsage

bp = Blueprint("fleet_control", __name__, url_prefix="/compute-actions/v1/fleet")

RULE = "compute_actions:fleet"


@bp.before_request
def _authenticate() -> None:
    """The app's gate authenticates /v2.1 only; this extension is authenticated the same way."""
    g.context = auth.context_builder(current.settings())(request.headers, g.request_id)
    bodies.check_media_type()
    ctx = current.context()
    current.authorize(RULE, {"project_id": ctx.project_id, "user_id": ctx.user_id})


def number(minimum: float, maximum: float, *, exclusive_minimum: bool = False) -> schemas.Validator:
    """A finite JSON number (integer or float, never a boolean) within bounds."""
    def check(value: Any, path: Path) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(path, value, f"{value!r} is not of type 'number'")
        if not math.isfinite(value):
            raise SchemaError(path, value, f"{value!r} is not a finite number")
        if value < minimum or (exclusive_minimum and value == minimum):
            word = "less than or equal to" if exclusive_minimum else "less than"
            raise SchemaError(path, value, f"{value!r} is {word} the minimum of {minimum:g}")
        if value > maximum:
            raise SchemaError(path, value, f"{value!r} is greater than the maximum of {maximum:g}")

    bound = {"exclusiveMinimum": minimum} if exclusive_minimum else {"minimum": minimum}
    return schemas.described(check, {"type": "number", **bound, "maximum": maximum})


def nullable_number(validator: schemas.Validator) -> schemas.Validator:
    """``validator`` or null (an integer is a number too, unlike api.schemas.nullable's type match)."""
    def check(value: Any, path: Path) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(path, value, f"{value!r} is not of type 'number', 'null'")
        validator(value, path)

    return schemas.described(check, {"anyOf": [{"type": "null"}, schemas.json_schema_of(validator)]})


def strict_boolean() -> schemas.Validator:
    def check(value: Any, path: Path) -> None:
        if not isinstance(value, bool):
            raise SchemaError(path, value, f"{value!r} is not of type 'boolean'")

    return schemas.described(check, {"type": "boolean"})


FAULT_SCHEMA = schemas.obj({
    "operation": schemas.enum(*fleet_control.OPERATIONS, *fleet_control.CHECKS),
    "host": schemas.nullable(schemas.fqdn(), "string"),
    "effect": schemas.enum(*fleet_control.EFFECTS),
    "factor": nullable_number(number(0, fleet_control.MAX_FACTOR, exclusive_minimum=True)),
    "times": schemas.nullable(schemas.integer(minimum=1), "integer"),
    "message": schemas.nullable(schemas.string(min_length=1, max_length=255), "string"),
}, required=["operation"])
HOST_SCHEMA = schemas.obj({"up": strict_boolean()}, required=["up"])
TIME_SCHEMA = schemas.obj({"scale": nullable_number(number(0, fleet_control.MAX_TIME_SCALE))},
                          required=["scale"])


def validated(schema: schemas.Validator) -> dict[str, Any]:
    body = json_body()
    if body is None:
        raise bad_request("The request body is missing: a JSON object is expected.")
    schemas.validate(schema, body)
    return body


def host_view(host: Host, usage: HostUsage) -> dict[str, Any]:
    return {
        "name": host.name,
        "state": "up" if host.service_is_up else "down",
        "status": "enabled" if host.enabled else "disabled",
        "up": host.up,
        "last_seen_up": host.last_seen_up,
        "forced_down": host.forced_down,
        "disabled_reason": host.disabled_reason,
        "hypervisor_type": host.hypervisor_type,
        "hypervisor_version": host.hypervisor_version,
        "cpu_model": host.cpu_model,
        "availability_zone": host.availability_zone,
        "shared_storage": host.shared_storage,
        "vcpus": host.vcpus, "vcpus_used": usage.vcpus_used,
        "memory_mb": host.memory_mb, "memory_mb_used": usage.memory_mb_used,
        "local_gb": host.local_gb, "local_gb_used": usage.local_gb_used,
        "running_vms": usage.running_vms,
    }


def store() -> Any:
    return current.service().store


@bp.get("/hosts")
def list_hosts() -> Any:
    found = sorted(current.service().list_hosts(), key=lambda pair: pair[0].name)
    return jsonify({"hosts": [host_view(h, u) for h, u in found]})


@bp.patch("/hosts/<name>")
def update_host(name: str) -> Any:
    body = validated(HOST_SCHEMA)
    host = fleet_control.set_host_up(store(), name, body["up"])
    return jsonify({"host": host_view(host, store().get_usage(host.name))})


@bp.get("/operations")
def list_operations() -> Any:
    return jsonify({"operations": fleet_control.operation_catalog()})


@bp.get("/faults")
def list_faults() -> Any:
    return jsonify({"faults": fleet_control.list_faults(store())})


@bp.post("/faults")
def add_fault() -> Any:
    body = validated(FAULT_SCHEMA)
    view = fleet_control.add_fault(store(), fleet_control.FaultRequest(
        operation=body["operation"], effect=body.get("effect") or "fail", host=body.get("host"),
        factor=None if body.get("factor") is None else float(body["factor"]),
        times=body.get("times"), message=body.get("message")))
    response = jsonify({"fault": view})
    response.status_code = 201
    return response


@bp.delete("/faults")
def clear_faults() -> Response:
    fleet_control.clear_faults(store())
    return Response(status=204)


@bp.delete("/faults/<path:rule_id>")
def remove_fault(rule_id: str) -> Response:
    fleet_control.remove_fault(store(), rule_id)
    return Response(status=204)


@bp.get("/time")
def show_time() -> Any:
    return jsonify({"time": fleet_control.time_view(store(), current.settings().fleet.duration_scale)})


@bp.put("/time")
def set_time() -> Any:
    body = validated(TIME_SCHEMA)
    scale = body["scale"]
    fleet_control.set_time_scale(store(), None if scale is None else float(scale))
    return jsonify({"time": fleet_control.time_view(store(), current.settings().fleet.duration_scale)})
