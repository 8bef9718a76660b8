"""The Flask application: the Nova-compatible HTTP layer over ComputeService.

Every request goes through the same gate, in Nova's middleware order: body size (413),
authentication (401), microversion (400/406), media type (415). Every response
leaves with the request-id headers, and, on microversioned routes, the version headers.
"""
from __future__ import annotations

import importlib
import pkgutil

from flask import Blueprint, Flask, Response, g, request

import api.views
from api import auth, bodies, microversions
from api.current import EXTENSION, AppParts
from api.errors import register_error_handlers
from api.policy import PolicyEnforcer
from compute.models import new_request_id
from compute.service import ComputeService
from compute.settings import Settings

API_PREFIX = "/v2.1/"


def view_blueprints() -> list[Blueprint]:
    """Import every module of api/views (their imports register server actions, api/actions.py)
    and return their blueprints, so a new resource or action is one new module."""
    found = []
    for info in sorted(pkgutil.iter_modules(api.views.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"api.views.{info.name}")
        blueprint = getattr(module, "bp", None)
        if isinstance(blueprint, Blueprint):
            found.append(blueprint)
    return found


def is_api_path(path: str) -> bool:
    """Authenticated, microversioned routes: everything under /v2.1/ except the version document."""
    return path.startswith(API_PREFIX) and path != API_PREFIX


def create_app(settings: Settings, service: ComputeService) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.extensions[EXTENSION] = AppParts(settings=settings, service=service, policy=PolicyEnforcer(settings))
    build_context = auth.context_builder(settings)

    @app.before_request
    def _gate() -> None:
        g.request_id = new_request_id()
        bodies.check_size(settings.api.max_body_bytes)
        if not is_api_path(request.path):
            return
        g.context = build_context(request.headers, g.request_id)
        g.api_version = microversions.negotiate(request.headers)
        bodies.check_media_type()

    @app.after_request
    def _stamp(response: Response) -> Response:
        request_id = g.get("request_id") or new_request_id()
        response.headers["x-openstack-request-id"] = request_id
        response.headers["x-compute-request-id"] = request_id
        version = g.get("api_version")
        if version is not None:
            microversions.stamp(response, version)
        return response

    register_error_handlers(app)
    for blueprint in view_blueprints():
        app.register_blueprint(blueprint)
    if settings.api.auth_strategy == "keystone":
        app.wsgi_app = auth.wrap_with_keystone(app.wsgi_app, settings)  # type: ignore[method-assign]
    return app
