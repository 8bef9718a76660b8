"""Host aggregates (nova aggregates.py): list, create, show, update, delete, and the
``add_host``, ``remove_host`` and ``set_metadata`` actions. Admin only by default.

Order as in Nova: body schema, policy, the integer id (400), then the store, which applies
the zone rules atomically (compute/aggregates.py, compute/store/aggregates.py). Create answers
200 without ``hosts`` and ``metadata``; delete answers 200 with an empty body; ``uuid`` is shown
from 2.41. An aggregate's ``availability_zone`` is its metadata key of that name.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api import current, ids, microversions, query, schemas
from api.bodies import MALFORMED, json_body
from api.errors import ApiError, bad_request, not_found
from api.schemas import Path, SchemaError, Validator
from compute import aggregates as rules
from compute.models import Aggregate

bp = Blueprint("aggregates", __name__, url_prefix="/v2.1")

RULE = "os_compute_api:os-aggregates:{}"
UUID_SHOWN = (2, 41)
STRICT_QUERY = (2, 102)
_METADATA_KEY = r"^[a-zA-Z0-9-_:. ]{1,255}$"


# ---- Nova's parameter types for aggregates -----------------------------------------------------
def _printable(value: str) -> bool:
    return all(c.isprintable() or c.isspace() for c in value)


def az_name() -> Validator:
    """``parameter_types.az_name``: printable except ':', no leading or trailing whitespace, 1-255."""
    length = schemas.string(min_length=1, max_length=255)

    def check(value: Any, path: Path) -> None:
        length(value, path)
        if ":" in value or not value.isprintable() or value != value.strip():
            raise SchemaError((), value, "An invalid 'name' value was provided. The name must be: printable "
                                         "characters except :.Can not start or end with whitespace.")

    return check


def name_with_spaces() -> Validator:
    """``name_with_leading_trailing_spaces`` (update): printable with at least one non-space character."""
    length = schemas.string(min_length=1, max_length=255)

    def check(value: Any, path: Path) -> None:
        length(value, path)
        if not value.strip() or not _printable(value):
            raise SchemaError((), value, "An invalid 'name' value was provided. The name must be: printable "
                                         "characters with at least one non space character")

    return check


def metadata_with_null() -> Validator:
    """``metadata_with_null``: keys ``^[a-zA-Z0-9-_:. ]{1,255}$``, values strings up to 255 or null."""
    key = schemas.string(pattern=_METADATA_KEY)
    value_check = schemas.nullable(schemas.string(max_length=255), "string")

    def check(value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            raise SchemaError(path, value, f"{value!r} is not of type 'object'")
        for name, item in value.items():
            try:
                key(name, path)
            except SchemaError:
                raise SchemaError(path, value,
                                  f"Additional properties are not allowed ({name!r} was unexpected)") from None
            value_check(item, path + (name,))

    return check


def any_of_required(validator: Validator, *names: str) -> Validator:
    """``anyOf: [{required: [name]}, ...]`` on top of ``validator``."""
    def check(value: Any, path: Path) -> None:
        validator(value, path)
        if not any(n in value for n in names):
            raise SchemaError(path, value, f"{value!r} is not valid under any of the given schemas")

    return check


_zone = schemas.one_of(az_name(), schemas.null())
CREATE_SCHEMA = schemas.obj({"aggregate": schemas.obj({"name": schemas.name(), "availability_zone": _zone},
                                                      required=["name"])}, required=["aggregate"])
UPDATE_SCHEMA = schemas.obj({"aggregate": any_of_required(
    schemas.obj({"name": name_with_spaces(), "availability_zone": _zone}), "name", "availability_zone")},
    required=["aggregate"])
_host = schemas.obj({"host": schemas.fqdn()}, required=["host"])
ACTION_SCHEMAS = {
    "add_host": schemas.action("add_host", _host),
    "remove_host": schemas.action("remove_host", _host),
    "set_metadata": schemas.action("set_metadata", schemas.obj({"metadata": metadata_with_null()},
                                                               required=["metadata"])),
}


# ---- views ------------------------------------------------------------------------------------------
def aggregate_view(aggregate: Aggregate, *, members: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "availability_zone": aggregate.availability_zone,
        "created_at": aggregate.created_at,
        "deleted": False,
        "deleted_at": None,
        "id": aggregate.id,
        "name": aggregate.name,
        "updated_at": aggregate.updated_at,
    }
    if members:
        view["hosts"] = list(aggregate.hosts)
        view["metadata"] = dict(aggregate.metadata)
    if microversions.current() >= UUID_SHOWN:
        view["uuid"] = aggregate.uuid
    return view


def answer(aggregate: Aggregate) -> Response:
    return jsonify({"aggregate": aggregate_view(aggregate)})


def authorize(operation: str) -> None:
    current.authorize(RULE.format(operation), {})


def strict_query() -> None:
    query.parse({}, strict=microversions.current() >= STRICT_QUERY)


def store() -> Any:
    return current.service().store


# ---- routes -----------------------------------------------------------------------------------------
@bp.get("/os-aggregates")
def list_aggregates() -> Any:
    strict_query()
    authorize("index")
    return jsonify({"aggregates": [aggregate_view(a) for a in store().list_aggregates()]})


@bp.post("/os-aggregates")
def create_aggregate() -> Any:
    body = json_body()
    schemas.validate(CREATE_SCHEMA, body)
    authorize("create")
    requested = body["aggregate"]
    zone = requested.get("availability_zone")
    aggregate = store().create_aggregate(requested["name"].strip(), zone.strip() if zone else None)
    return jsonify({"aggregate": aggregate_view(aggregate, members=False)})


@bp.get("/os-aggregates/<aggregate_ref>")
def show_aggregate(aggregate_ref: str) -> Any:
    strict_query()
    authorize("show")
    aggregate_id = ids.integer_id(aggregate_ref)
    aggregate = store().get_aggregate(aggregate_id)
    if aggregate is None:
        raise rules.AggregateNotFound(aggregate_id)
    return answer(aggregate)


@bp.put("/os-aggregates/<aggregate_ref>")
def update_aggregate(aggregate_ref: str) -> Any:
    body = json_body()
    schemas.validate(UPDATE_SCHEMA, body)
    authorize("update")
    updates = dict(body["aggregate"])
    if "name" in updates:
        updates["name"] = updates["name"].strip()
    return answer(store().update_aggregate(ids.integer_id(aggregate_ref), updates))


@bp.delete("/os-aggregates/<aggregate_ref>")
def delete_aggregate(aggregate_ref: str) -> Response:
    authorize("delete")
    store().delete_aggregate(ids.integer_id(aggregate_ref))
    return Response(b"", status=200, mimetype="application/json")


@bp.post("/os-aggregates/<aggregate_ref>/action")
def aggregate_action(aggregate_ref: str) -> Any:
    body = json_body()
    if not isinstance(body, dict) or len(body) != 1:
        raise bad_request(MALFORMED)
    (key,) = body
    if key not in ACTION_SCHEMAS:
        raise bad_request(f"There is no such action: {key}")
    schemas.validate(ACTION_SCHEMAS[key], body)
    authorize(key)
    aggregate_id = ids.integer_id(aggregate_ref)
    if key == "set_metadata":
        return answer(store().set_aggregate_metadata(aggregate_id, body[key]["metadata"]))
    host = body[key]["host"]
    if key == "add_host":
        try:
            return answer(store().add_aggregate_host(aggregate_id, host))
        except rules.InvalidAggregateAction as exc:
            raise ApiError(409, exc.message) from None
    try:
        return answer(store().remove_aggregate_host(aggregate_id, host))
    except (rules.AggregateNotFound, rules.AggregateHostNotFound, rules.ComputeHostNotFound):
        raise not_found(f"Cannot remove host {host} in aggregate {aggregate_id}") from None
    except rules.InvalidAggregateAction as exc:
        raise ApiError(409, exc.message) from None
