"""Response schemas for the OpenAPI document (api/openapi.py): success bodies and faults.

Hand-described, unlike request bodies: views build their answers as plain dicts, so the shapes of
the main routes are written here (:func:`success_responses`). Errors are Nova fault bodies
(api/errors.py), except in blueprints that answer in another service's shape (:data:`BLUEPRINT_ERRORS`).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from flask import Flask

from api.errors import FAULT_NAMES, fault_name
from api.microversions import APIVersion

ERROR_CODES = (400, 401, 403, 404, 405, 406, 409, 413, 415, 503)


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
