"""``GET /openapi.json``: the OpenAPI 3.1 document of every route (api/openapi.py); no token.

Without a version it describes every microversion (bodies that differ listed per range);
``?microversion=X.Y`` (or ``latest``), or the ``OpenStack-API-Version`` header, asks for
exactly one: 400 when malformed, 406 outside the served range, as on the API itself.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from api import links, microversions, openapi

bp = Blueprint("openapi", __name__)


def requested_version() -> microversions.APIVersion | None:
    text = request.args.get("microversion") or microversions.requested_version_string(request.headers)
    if not text:
        return None
    if text.lower() == "latest":
        return microversions.MAX_VERSION
    version = microversions.APIVersion.parse(text)
    if not microversions.MIN_VERSION <= version <= microversions.MAX_VERSION:
        raise microversions.unsupported(str(version))
    return version


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI 3.1 document, for every microversion or the one asked for."""
    body = openapi.document_json(current_app, requested_version(), links.root_url() + "/")
    return Response(body, mimetype="application/json")
