"""The OpenAPI 3.1 document of every route the app serves (``GET /openapi.json``).

Generated, not written: the paths are ``app.url_map``; request bodies are the ``.json_schema``
of the very validators that check them (api/schemas.py), so the document cannot drift from
what a request is held to. Where a body depends on the microversion, each validator is
sampled at every microversion and the ranges over which it is the same are listed:

- ``GET /openapi.json`` (no version asked): each body is the ``anyOf`` of its variants, each
  variant listed with its range under ``x-openstack-microversions``; microversioned
  operations take the ``OpenStack-API-Version`` header as a parameter.
- ``GET /openapi.json?microversion=2.56`` (or ``latest``, or the ``OpenStack-API-Version``
  header): exactly what that microversion accepts and answers.

Where the bodies come from:

- ``POST /servers/{id}/action``: one variant per key of the action registry (api/actions.py).
  A key registered with ``schema=`` / ``schema_for=`` is described by it; otherwise by the
  ``schemas.action(key, ...)`` validators its handler's module defines (all of them, as
  ``anyOf``); otherwise as ``{key: <any value>}``.
- Other routes with a body: :data:`REQUEST_BODIES` names the validator each view checks.
  One missing from it (or whose name no longer resolves) is documented as any JSON value and
  flagged ``x-request-schema: undescribed``; tests/api/test_openapi.py fails on such a flag.

Responses: every 4xx and 5xx is a Nova fault body (``{"<faultName>": {"code", "message"}}``,
api/errors.py), documented per status code. Success bodies have schemas for the main routes
(:func:`success_responses`); elsewhere a ``2XX`` without a schema.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

from api import schemas
from api.errors import FAULT_NAMES, fault_name
from api.microversions import LEGACY_HEADER, MAX_VERSION, MIN_VERSION, NEW_HEADER, APIVersion
from api.schemas import Validator

SchemaFor = Callable[[APIVersion], Validator | None]
ALL_VERSIONS = tuple(APIVersion(MIN_VERSION.major, minor) for minor in range(MIN_VERSION.minor, MAX_VERSION.minor + 1))
BODY_METHODS = ("POST", "PUT", "PATCH")
SKIPPED_ENDPOINTS = frozenset({"static"})
# Blueprints whose routes need no token (everything else is authenticated: /v2.1/, /metrics, fleet control).
PUBLIC_BLUEPRINTS = frozenset({"versions", "identity", "volume_discovery", "health", "openapi"})
ERROR_CODES = (400, 401, 403, 404, 405, 406, 409, 413, 415, 503)
_REQUIRE = re.compile(r"microversions\.require\(\(\s*(\d+)\s*,\s*(\d+)\s*\)(?:\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))?")


# ---- request bodies of the routes other than server actions -----------------------------------
def _attr(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def _constant(module: str, name: str) -> SchemaFor:
    return lambda mv: _attr(module, name)


def _services_schema(mv: APIVersion) -> Validator:
    m = "api.views.services"
    if mv >= _attr(m, "UUID_IDS"):
        return _attr(m, "SCHEMA_253")
    return _attr(m, "LEGACY_SCHEMA_211") if mv >= _attr(m, "FORCED_DOWN") else _attr(m, "LEGACY_SCHEMA")


def _quota_set_schema(mv: APIVersion) -> Validator:
    view = importlib.import_module("api.quota_view")
    return view.quota_update_schema("quota_set", view.quota_set_resources(mv), force=True)


def _quota_class_schema(mv: APIVersion) -> Validator:
    view = importlib.import_module("api.quota_view")
    return view.quota_update_schema("quota_class_set", view.quota_class_settable(mv), force=False)


def _aggregate_action_schema(mv: APIVersion) -> Validator:
    return schemas.one_of(*_attr("api.views.aggregates", "ACTION_SCHEMAS").values())


# endpoint -> the validator its view applies at a microversion (None: not validated there).
REQUEST_BODIES: dict[str, SchemaFor] = {
    "create_server.create_server_action": _constant("api.views.create_server", "CREATE_SCHEMA"),
    "aggregates.create_aggregate": _constant("api.views.aggregates", "CREATE_SCHEMA"),
    "aggregates.update_aggregate": _constant("api.views.aggregates", "UPDATE_SCHEMA"),
    "aggregates.aggregate_action": _aggregate_action_schema,
    "services.update_service": _services_schema,
    "quota_sets.update_quota_set": _quota_set_schema,
    "quota_class_sets.update_quota_class": _quota_class_schema,
    "live_migration_force_complete.server_migration_action":
        _constant("api.views.live_migration_force_complete", "FORCE_COMPLETE_SCHEMA"),
    "fleet_control.add_fault": _constant("api.views.fleet_control", "FAULT_SCHEMA"),
    "fleet_control.update_host": _constant("api.views.fleet_control", "HOST_SCHEMA"),
    "fleet_control.set_time": _constant("api.views.fleet_control", "TIME_SCHEMA"),
}
SERVER_ACTION_ENDPOINT = "server_actions.server_action"


@dataclass(frozen=True)
class HandParsed:
    """A body its view reads by hand, without a validator: described here (keep it in step with the view)."""

    schema: dict[str, Any]
    media_types: tuple[str, ...] = ("application/json",)


HAND_PARSED: dict[str, HandParsed] = {
    # api/views/identity.py issue_token: Keystone's auth request, the token or password method.
    "identity.issue_token": HandParsed({"type": "object", "required": ["auth"], "properties": {"auth": {
        "type": "object", "required": ["identity"], "properties": {
            "identity": {"type": "object", "required": ["methods"], "properties": {
                "methods": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "token": {"type": "object", "properties": {"id": {"type": "string"}}},
                "password": {"type": "object", "properties": {"user": {"type": "object"}}}}},
            "scope": {"anyOf": [{"const": "unscoped"}, {"type": "object"}]}}}}}),
    # api/views/glance_images.py update_image: a JSON patch in Glance's media types.
    "glance_images.update_image": HandParsed(
        {"type": "array", "items": {"type": "object", "required": ["op", "path"], "properties": {
            "op": {"enum": ["add", "replace", "remove"]}, "path": {"type": "string"}, "value": {}}}},
        ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")),
}
# PUT/POST/PATCH routes that read no body.
NO_BODY = frozenset({"glance_images.add_tag"})


# ---- microversion ranges ------------------------------------------------------------------------
Range = tuple[APIVersion, APIVersion, dict[str, Any]]


def version_ranges(schema_for: Callable[[APIVersion], dict[str, Any]]) -> list[Range]:
    """``[(first, last, schema)]``: the microversion ranges over which ``schema_for`` is the same."""
    ranges: list[Range] = []
    previous: str | None = None
    for mv in ALL_VERSIONS:
        found = schema_for(mv)
        key = json.dumps(found, sort_keys=True)
        if ranges and key == previous:
            first, _, schema = ranges[-1]
            ranges[-1] = (first, mv, schema)
        else:
            ranges.append((mv, mv, found))
        previous = key
    return ranges


def range_doc(first: APIVersion, last: APIVersion, schema: dict[str, Any]) -> dict[str, Any]:
    return {"min_version": str(first), "max_version": str(last), "schema": schema}


def any_of(found: list[dict[str, Any]]) -> dict[str, Any]:
    unique: list[dict[str, Any]] = []
    for schema in found:
        if schema not in unique:
            unique.append(schema)
    if any(s == {} for s in unique):
        return {}
    return unique[0] if len(unique) == 1 else {"anyOf": unique}


# ---- server actions -------------------------------------------------------------------------------
def _any_action(key: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {}}, "required": [key], "additionalProperties": False}


def _is_action_schema(schema: dict[str, Any], key: str) -> bool:
    return (schema.get("type") == "object" and schema.get("required") == [key]
            and list(schema.get("properties", {})) == [key] and schema.get("additionalProperties") is False)


def module_action_schemas(key: str, handler: Callable[..., Any]) -> list[dict[str, Any]]:
    """The ``schemas.action(key, ...)`` validators the handler's module defines at its top level."""
    module = sys.modules.get(getattr(handler, "__module__", ""), None)
    found = []
    for value in vars(module).values() if module is not None else ():
        schema = getattr(value, "json_schema", None) if callable(value) else None
        if isinstance(schema, dict) and _is_action_schema(schema, key) and schema not in found:
            found.append(copy.deepcopy(schema))
    return found


def action_schema_for(key: str) -> Callable[[APIVersion], dict[str, Any]]:
    from api.actions import ACTION_SCHEMAS, ACTIONS

    registered = ACTION_SCHEMAS.get(key)
    if registered is not None:
        def described(mv: APIVersion) -> dict[str, Any]:
            validator = registered(mv)
            return _any_action(key) if validator is None else schemas.json_schema_of(validator)

        return described
    discovered = module_action_schemas(key, ACTIONS[key])
    schema = (discovered[0] if len(discovered) == 1 else {"anyOf": discovered}) if discovered else _any_action(key)
    return lambda mv: copy.deepcopy(schema)


def server_action_body(version: APIVersion | None) -> dict[str, Any]:
    from api.actions import ACTIONS

    variants: list[dict[str, Any]] = []
    per_key: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(ACTIONS):
        schema_for = action_schema_for(key)
        if version is not None:
            variants.append(schema_for(version))
            continue
        ranges = version_ranges(schema_for)
        per_key[key] = [range_doc(*r) for r in ranges]
        variants.extend(schema for _, _, schema in ranges)
    body = {"anyOf": [v for i, v in enumerate(variants) if v not in variants[:i]]}
    doc: dict[str, Any] = {"required": True, "content": {"application/json": {"schema": body}}}
    if per_key:
        doc["x-openstack-actions"] = per_key
    return doc


def request_body(endpoint: str, version: APIVersion | None) -> dict[str, Any] | None:
    if endpoint == SERVER_ACTION_ENDPOINT:
        return server_action_body(version)
    if endpoint in NO_BODY:
        return None
    if endpoint in HAND_PARSED:
        hand = HAND_PARSED[endpoint]
        return {"required": True, "content": {t: {"schema": copy.deepcopy(hand.schema)} for t in hand.media_types},
                "x-request-schema": "hand-parsed (api/openapi.py HAND_PARSED)"}
    schema_for = REQUEST_BODIES.get(endpoint)
    if schema_for is None:
        return {"content": {"application/json": {"schema": {}}}, "x-request-schema": "undescribed"}

    def described(mv: APIVersion) -> dict[str, Any]:
        return schemas.json_schema_of(schema_for(mv))

    try:
        if version is not None:
            return {"required": True, "content": {"application/json": {"schema": described(version)}}}
        ranges = version_ranges(described)
    except (ImportError, AttributeError) as exc:  # a view renamed what this table names
        return {"content": {"application/json": {"schema": {}}}, "x-request-schema": "undescribed",
                "x-request-schema-error": f"{type(exc).__name__}: {exc}"}
    doc: dict[str, Any] = {"required": True,
                           "content": {"application/json": {"schema": any_of([s for _, _, s in ranges])}}}
    if len(ranges) > 1:
        doc["x-openstack-microversions"] = [range_doc(*r) for r in ranges]
    return doc


# ---- query parameters of the main listings ------------------------------------------------------------
def _query_schema(parser: Callable[..., Any]) -> dict[str, Any]:
    from api import query

    known: dict[Callable[..., Any], dict[str, Any]] = {
        query.text: {"type": "string"},
        query.non_negative_int: {"type": "integer", "minimum": 0},
        query.timestamp: {"type": "string", "format": "date-time"},
        query.boolean: {"type": "string", "enum": sorted(schemas.BOOLEAN_STRINGS)},
        query.name_pattern: {"type": "string", "maxLength": query.MAX_NAME_PATTERN_LENGTH},
    }
    return copy.deepcopy(known.get(parser, {"type": "string"}))


def _listing_queries() -> dict[str, Callable[[APIVersion], dict[str, Callable[..., Any]]]]:
    return {
        "servers.list_servers": lambda mv: _attr("api.views.servers", "LIST_QUERY"),
        "servers.list_servers_detail": lambda mv: _attr("api.views.servers", "LIST_QUERY"),
        "instance_actions.list_instance_actions":
            lambda mv: _attr("api.views.instance_actions", "list_query_parsers")(mv) if mv >= (2, 58) else {},
        "os_migrations.list_migrations": lambda mv: _attr("api.views.os_migrations", "query_parsers")(mv),
    }


def query_parameters(endpoint: str, version: APIVersion | None) -> list[dict[str, Any]]:
    parsers_for = _listing_queries().get(endpoint)
    if parsers_for is None:
        return []
    try:
        versions = ALL_VERSIONS if version is None else (version,)
        names: dict[str, dict[str, Any]] = {}
        for mv in versions:
            for name, parser in parsers_for(mv).items():
                names.setdefault(name, _query_schema(parser))
    except (ImportError, AttributeError):
        return []
    return [{"name": name, "in": "query", "required": False, "schema": schema} for name, schema in names.items()]


# ---- responses ----------------------------------------------------------------------------------------
STR = {"type": "string"}
NULLABLE_STR = {"type": ["string", "null"]}
INT = {"type": "integer"}


def obj(properties: dict[str, Any], required: Iterable[str] | None = None) -> dict[str, Any]:
    """An object with these properties, all required unless ``required`` says which; others allowed."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else list(required)}


LINKS = {"type": "array", "items": obj({"rel": STR, "href": STR})}
VERSION = obj({"id": STR, "status": STR, "version": STR, "min_version": STR, "links": LINKS},
              ["id", "status", "links"])
SERVER_SUMMARY = obj({"id": STR, "name": STR, "links": LINKS})
SERVER = obj({"id": STR, "name": STR, "status": STR, "tenant_id": STR, "user_id": STR,
              "metadata": {"type": "object"}, "hostId": STR, "links": LINKS,
              "created": STR, "updated": STR, "addresses": {"type": "object"},
              "OS-EXT-STS:vm_state": STR, "OS-EXT-STS:task_state": NULLABLE_STR},
             ["id", "name", "status", "tenant_id", "user_id", "links"])
FLAVOR = obj({"id": STR, "name": STR, "links": LINKS}, ["id", "links"])
IMAGE = obj({"id": STR, "name": NULLABLE_STR, "links": LINKS}, ["id", "links"])


def instance_action(mv: APIVersion | None) -> dict[str, Any]:
    keys = ("action", "instance_uuid", "message", "project_id", "request_id", "start_time", "user_id")
    properties: dict[str, Any] = {k: NULLABLE_STR for k in keys}
    properties.update(action=STR, instance_uuid=STR, request_id=STR)
    required = list(keys)
    if mv is None or mv >= (2, 58):
        properties["updated_at"] = NULLABLE_STR
        if mv is not None:
            required.append("updated_at")
    return obj(properties, required)


def instance_action_detail(mv: APIVersion | None) -> dict[str, Any]:
    schema = instance_action(mv)
    event = obj({"event": STR, "start_time": NULLABLE_STR, "finish_time": NULLABLE_STR, "result": NULLABLE_STR,
                 "traceback": NULLABLE_STR, "host": NULLABLE_STR, "hostId": STR},
                ["event", "start_time", "finish_time", "result"])
    schema["properties"]["events"] = {"type": "array", "items": event}
    if mv is not None and mv >= (2, 51):
        schema["required"].append("events")
    return schema


def migration(mv: APIVersion | None) -> dict[str, Any]:
    properties = {"id": INT, "status": STR, "instance_uuid": STR, "created_at": STR, "updated_at": NULLABLE_STR,
                  "source_compute": NULLABLE_STR, "dest_compute": NULLABLE_STR, "migration_type": STR,
                  "uuid": STR, "user_id": NULLABLE_STR, "project_id": NULLABLE_STR, "links": LINKS}
    required = ["id", "status", "instance_uuid", "created_at"]
    if mv is not None:
        required += [k for k, since in (("migration_type", (2, 23)), ("uuid", (2, 59)), ("user_id", (2, 80)),
                                        ("project_id", (2, 80))) if mv >= since]
    return obj(properties, required)


def server_migration(mv: APIVersion | None) -> dict[str, Any]:
    properties = {"id": INT, "server_uuid": STR, "status": STR, "created_at": STR, "updated_at": NULLABLE_STR,
                  "source_compute": NULLABLE_STR, "dest_compute": NULLABLE_STR, "uuid": STR}
    required = ["id", "server_uuid", "status", "created_at"]
    if mv is not None and mv >= (2, 59):
        required.append("uuid")
    return obj(properties, required)


def listing(key: str, item: dict[str, Any], links_key: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {key: {"type": "array", "items": item}}
    if links_key:
        properties[links_key] = LINKS
    return obj(properties, [key])


READINESS = obj({"store": STR, "broker": STR, "workers": {"type": ["integer", "null"]},
                 "failed": {"type": "array", "items": {"enum": ["store", "broker", "workers"]}}},
                ["store", "broker", "workers"])
QUOTA_SET = {"type": "object", "additionalProperties": {"type": ["integer", "string", "object"]}}


def success_responses(endpoint: str, mv: APIVersion | None) -> dict[str, dict[str, Any] | None]:
    """Status code -> body schema (None: no body) of the routes described here; {} for the rest."""
    json_object: dict[str, Any] = {"type": "object"}
    table: dict[str, dict[str, dict[str, Any] | None]] = {
        "versions.list_versions": {"200": obj({"versions": {"type": "array", "items": VERSION}})},
        "versions.show_v20": {"200": obj({"version": VERSION})},
        "versions.show_v21": {"200": obj({"version": VERSION})},
        "identity.show_identity_v3": {"200": obj({"version": VERSION})},
        "volume_discovery.show_volume_v3": {"200": obj({"version": VERSION})},
        "health.healthz": {"200": obj({"status": {"const": "ok"}})},
        "health.readyz": {"200": READINESS, "503": READINESS},
        "openapi.openapi_document": {"200": obj({"openapi": STR, "info": json_object, "paths": json_object})},
        "servers.list_servers": {"200": listing("servers", SERVER_SUMMARY, "servers_links")},
        "servers.list_servers_detail": {"200": listing("servers", SERVER, "servers_links")},
        "servers.show_server": {"200": obj({"server": SERVER})},
        "create_server.create_server_action": {"202": {"anyOf": [
            obj({"server": obj({"id": STR, "links": LINKS, "adminPass": STR}, ["id", "links"])}),
            obj({"reservation_id": STR})]}},
        "delete_server.delete_server_action": {"204": None},
        "server_actions.server_action": {"202": None, "204": None},
        "instance_actions.list_instance_actions": {"200": listing("instanceActions", instance_action(mv), "links")},
        "instance_actions.show_instance_action": {"200": obj({"instanceAction": instance_action_detail(mv)})},
        "os_migrations.list_migrations": {"200": listing("migrations", migration(mv), "migrations_links")},
        "server_migrations.list_server_migrations": {"200": listing("migrations", server_migration(mv))},
        "server_migrations.show_server_migration": {"200": obj({"migration": server_migration(mv)})},
        "live_migration_abort.abort_server_migration": {"202": None},
        "live_migration_force_complete.server_migration_action": {"202": None},
        "flavors.list_flavors": {"200": listing("flavors", FLAVOR, "flavors_links")},
        "flavors.list_flavors_detail": {"200": listing("flavors", FLAVOR, "flavors_links")},
        "flavors.show_flavor": {"200": obj({"flavor": FLAVOR})},
        "images.list_images": {"200": listing("images", IMAGE, "images_links")},
        "images.list_images_detail": {"200": listing("images", IMAGE, "images_links")},
        "images.show_image": {"200": obj({"image": IMAGE})},
        "images.delete_image": {"204": None},
        "limits.show_limits": {"200": obj({"limits": obj({"rate": {"type": "array"},
                                                           "absolute": {"type": "object",
                                                                        "additionalProperties": INT}})})},
        "availability_zones.list_zones": {"200": listing("availabilityZoneInfo", obj(
            {"zoneName": STR, "zoneState": obj({"available": {"type": "boolean"}}), "hosts": {"type": "null"}}))},
        "availability_zones.list_zones_detail": {"200": listing("availabilityZoneInfo", obj(
            {"zoneName": STR, "zoneState": obj({"available": {"type": "boolean"}}),
             "hosts": {"type": ["object", "null"]}}))},
        "quota_sets.show_quota_set": {"200": obj({"quota_set": QUOTA_SET})},
        "quota_sets.show_quota_set_detail": {"200": obj({"quota_set": QUOTA_SET})},
        "quota_sets.show_quota_defaults": {"200": obj({"quota_set": QUOTA_SET})},
        "quota_sets.update_quota_set": {"200": obj({"quota_set": QUOTA_SET})},
        "quota_sets.delete_quota_set": {"202": None},
        "quota_class_sets.show_quota_class": {"200": obj({"quota_class_set": QUOTA_SET})},
        "quota_class_sets.update_quota_class": {"200": obj({"quota_class_set": QUOTA_SET})},
        "metrics.metrics": {"200": {"x-media-type": "text/plain"}},
    }
    return table.get(endpoint, {})


def fault_schema(code: int) -> dict[str, Any]:
    name = fault_name(code)
    inner = obj({"code": {"const": code}, "message": STR})
    return {"type": "object", "properties": {name: inner}, "required": [name], "additionalProperties": False}


ANY_FAULT = {
    "type": "object", "minProperties": 1, "maxProperties": 1,
    "propertyNames": {"enum": sorted({*FAULT_NAMES.values(), "computeFault"})},
    "additionalProperties": obj({"code": INT, "message": STR}),
}


def components() -> dict[str, Any]:
    responses = {str(code): {"description": f"Nova fault ({fault_name(code)})",
                             "content": {"application/json": {"schema": fault_schema(code)}}}
                 for code in ERROR_CODES}
    for wildcard in ("4XX", "5XX"):
        responses[wildcard] = {"description": "Nova fault", "content": {"application/json": {"schema": ANY_FAULT}}}
    return {
        "securitySchemes": {"noauth2": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
                                        "description": "<user>:<project>; user admin is an admin"}},
        "responses": responses,
    }


# Blueprints that answer their own ApiErrors in another service's shape (their module docstrings).
# Errors raised outside their handler (unknown methods, the store down) are still Nova faults.
BLUEPRINT_ERRORS: dict[str, dict[str, Any]] = {
    "identity": obj({"error": obj({"code": INT, "message": STR, "title": STR})}),  # Keystone's
    "glance_images": obj({"message": STR, "code": STR, "title": STR}),  # Glance's (webob's JSON form)
}


def own_error_shape(app: Flask, blueprint: str) -> dict[str, Any] | None:
    """None when the blueprint's ApiErrors are Nova faults; else the shape of its own ({}: unknown)."""
    from api.errors import ApiError

    handlers = app.error_handler_spec.get(blueprint, {})
    if not any(ApiError in by_class for by_class in handlers.values()):
        return None
    return copy.deepcopy(BLUEPRINT_ERRORS.get(blueprint, {}))


def responses(endpoint: str, mv: APIVersion | None, own_errors: dict[str, Any] | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    table = success_responses(endpoint, mv)
    for status, schema in table.items():
        if schema is None:
            found[status] = {"description": "no body"}
        elif "x-media-type" in schema:
            text = {schema["x-media-type"]: {"schema": {"type": "string"}}}
            found[status] = {"description": "success", "content": text}
        else:
            found[status] = {"description": "success", "content": {"application/json": {"schema": schema}}}
    if not any(s.startswith("2") for s in table):
        found["2XX"] = {"description": "success (body not described here)"}
    if own_errors is not None:
        either = {"anyOf": [ANY_FAULT, own_errors]} if own_errors else {}
        found["4XX"] = {"description": "the service's own error, or a Nova fault",
                        "content": {"application/json": {"schema": either}}}
        found["5XX"] = {"$ref": "#/components/responses/5XX"}
        return found
    for code in ERROR_CODES:
        found.setdefault(str(code), {"$ref": f"#/components/responses/{code}"})
    found.setdefault("4XX", {"$ref": "#/components/responses/4XX"})
    found.setdefault("5XX", {"$ref": "#/components/responses/5XX"})
    return found


# ---- paths ---------------------------------------------------------------------------------------------
def openapi_path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    parameters = []
    converters = getattr(rule, "_converters", {})
    for name in rule.arguments:
        converter = type(converters.get(name)).__name__
        schema = {"type": "integer"} if converter in ("IntegerConverter",) else {"type": "string", "minLength": 1}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
    return path, parameters


def version_bounds(view: Callable[..., Any]) -> tuple[APIVersion, APIVersion | None]:
    """The microversions a view serves, read from its ``microversions.require(...)`` call (404 outside)."""
    try:
        source = inspect.getsource(inspect.unwrap(view))
    except (OSError, TypeError):
        return MIN_VERSION, None
    match = _REQUIRE.search(source)
    if match is None:
        return MIN_VERSION, None
    low = APIVersion(int(match.group(1)), int(match.group(2)))
    high = APIVersion(int(match.group(3)), int(match.group(4))) if match.group(3) else None
    return low, high


def summary_of(view: Callable[..., Any]) -> str:
    doc = inspect.getdoc(inspect.unwrap(view)) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")[:200]


def version_header_parameter() -> dict[str, Any]:
    values = [f"compute {v}" for v in ALL_VERSIONS] + ["compute latest"]
    return {"name": NEW_HEADER, "in": "header", "required": False, "schema": {"type": "string", "enum": values},
            "description": f"The compute microversion (default {MIN_VERSION}; {LEGACY_HEADER} is also read)"}


IDEMPOTENCY_ENDPOINTS = frozenset({"create_server.create_server_action", SERVER_ACTION_ENDPOINT})


def operation(app: Flask, rule: Rule, method: str, version: APIVersion | None,
              operation_id: str) -> dict[str, Any]:
    from api.app import is_api_path

    endpoint = rule.endpoint
    view = app.view_functions[endpoint]
    _, parameters = openapi_path(rule)
    microversioned = is_api_path(rule.rule)
    op: dict[str, Any] = {"operationId": operation_id, "tags": [endpoint.split(".", 1)[0]]}
    summary = summary_of(view)
    if summary:
        op["summary"] = summary
    parameters += query_parameters(endpoint, version)
    if microversioned:
        low, high = version_bounds(view)
        op["x-openstack-min-version"] = str(low)
        if high is not None:
            op["x-openstack-max-version"] = str(high)
        if version is None:
            parameters.append(version_header_parameter())
    if endpoint in IDEMPOTENCY_ENDPOINTS:
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                                      "pattern": "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$"}})
    if parameters:
        op["parameters"] = parameters
    if method in BODY_METHODS:
        body = request_body(endpoint, version)
        if body is not None:
            op["requestBody"] = body
    op["security"] = [] if is_public(endpoint, view) else [{"noauth2": []}]
    op["responses"] = responses(endpoint, version, own_error_shape(app, endpoint.split(".", 1)[0]))
    return op


def is_public(endpoint: str, view: Callable[..., Any]) -> bool:
    """No token needed: a module's own ``PUBLIC_ENDPOINTS`` says so, else the blueprint is a public one."""
    module = sys.modules.get(getattr(inspect.unwrap(view), "__module__", ""), None)
    listed = getattr(module, "PUBLIC_ENDPOINTS", None)
    if isinstance(listed, (set, frozenset)):
        return endpoint in listed
    return endpoint.split(".", 1)[0] in PUBLIC_BLUEPRINTS


def served_rules(app: Flask) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint not in SKIPPED_ENDPOINTS),
                  key=lambda r: (r.rule, sorted(r.methods or ())))


def operation_methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def build_document(app: Flask, version: APIVersion | None = None, server_url: str = "/") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for rule in served_rules(app):
        path, _ = openapi_path(rule)
        for method in operation_methods(rule):
            operation_id = rule.endpoint.replace(".", "_")
            if method != "GET" or operation_id in used_ids:
                operation_id = f"{operation_id}_{method.lower()}"
            n = 2
            while operation_id in used_ids:
                operation_id, n = f"{operation_id.rstrip('_0123456789')}_{n}", n + 1
            used_ids.add(operation_id)
            paths.setdefault(path, {})[method.lower()] = operation(app, rule, method, version, operation_id)
    described = "every microversion" if version is None else f"microversion {version}"
    return {
        "openapi": "3.1.0",
        "info": {"title": "compute-actions", "version": str(MAX_VERSION),
                 "description": f"Nova-compatible admin-action engine; this document describes {described}. "
                                "Generated from the request validators (api/openapi.py)."},
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": components(),
        "x-openstack-microversions": {"min_version": str(MIN_VERSION), "max_version": str(MAX_VERSION),
                                      "described": None if version is None else str(version)},
    }


def document_json(app: Flask, version: APIVersion | None, server_url: str) -> str:
    """The document as JSON text, built once per (version, server URL) and kept on the app."""
    cache: dict[tuple[APIVersion | None, str], str] = app.extensions.setdefault("openapi_documents", {})
    key = (version, server_url)
    if key not in cache:
        cache[key] = json.dumps(build_document(app, version, server_url))
    return cache[key]
