"""Request bodies for the OpenAPI document (api/openapi.py): which validator each route checks.

Kept apart from the path walk because this is the table that must follow the views: when a view
changes the validator it applies, :data:`REQUEST_BODIES` (or :data:`HAND_PARSED`, for bodies read by
hand) changes with it. Server actions are described from the action registry (api/actions.py);
microversion-dependent bodies are sampled at every microversion (:func:`version_ranges`).
"""
from __future__ import annotations

import copy
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api import schemas
from api.microversions import MAX_VERSION, MIN_VERSION, APIVersion
from api.schemas import Validator

SchemaFor = Callable[[APIVersion], Validator | None]
ALL_VERSIONS = tuple(APIVersion(MIN_VERSION.major, minor) for minor in range(MIN_VERSION.minor, MAX_VERSION.minor + 1))


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
