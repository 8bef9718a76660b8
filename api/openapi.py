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
- Other routes with a body: ``REQUEST_BODIES`` (api/openapi_bodies.py) names the validator each view checks.
  One missing from it (or whose name no longer resolves) is documented as any JSON value and
  flagged ``x-request-schema: undescribed``; tests/api/test_openapi.py fails on such a flag.

Responses: every 4xx and 5xx is a Nova fault body (``{"<faultName>": {"code", "message"}}``,
api/errors.py), documented per status code. Success bodies have schemas for the main routes
(``success_responses``, api/openapi_responses.py); elsewhere a ``2XX`` without a schema.
"""
from __future__ import annotations

import copy
import inspect
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

from api import schemas
from api.microversions import (
    LEGACY_HEADER,
    MAX_VERSION,
    MIN_VERSION,
    NEW_HEADER,
    APIVersion,
)
from api.openapi_bodies import ALL_VERSIONS, SERVER_ACTION_ENDPOINT, _attr, request_body
from api.openapi_responses import components, own_error_shape, responses

BODY_METHODS = ("POST", "PUT", "PATCH")
SKIPPED_ENDPOINTS = frozenset({"static"})
# Blueprints whose routes need no token (everything else is authenticated: /v2.1/, /metrics, fleet control).
PUBLIC_BLUEPRINTS = frozenset({"versions", "identity", "volume_discovery", "health", "openapi"})
_REQUIRE = re.compile(r"microversions\.require\(\(\s*(\d+)\s*,\s*(\d+)\s*\)(?:\s*,\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))?")


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
