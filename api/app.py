"""The Flask application: the Nova-compatible HTTP layer over ComputeService.

Every request goes through the same gate, in Nova's middleware order: body size (413),
authentication (401), microversion (400/406), media type (415). Every response
leaves with the request-id headers, and, on microversioned routes, the version headers.

Every request is also one access-log line (logger ``api.access``: method, path, route, status,
duration, request id) and one observation of the HTTP metrics, by URL rule rather than raw path
so that a scrape has one series per route. Lines logged while a request is served carry its
request id (compute/log_context.py); an action's worker logs the same id.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
import time

from flask import Blueprint, Flask, Response, g, request

import api.views
from api import auth, bodies, microversions
from api.current import EXTENSION, AppParts
from api.errors import register_error_handlers
from api.policy import PolicyEnforcer
from compute import log_context, telemetry
from compute.models import new_request_id
from compute.service import ComputeService
from compute.settings import Settings

API_PREFIX = "/v2.1/"
ACCESS_LOG = logging.getLogger("api.access")
# The route label of a request no URL rule matched (a 404 or 405 before any view).
UNMATCHED_ROUTE = "unmatched"


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


def record_request(response: Response, request_id: str) -> None:
    """The access-log line and the HTTP metrics of the request being answered."""
    started = g.get("started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
    telemetry.observer().http_request(request.method, route, response.status_code, seconds)
    if not ACCESS_LOG.isEnabledFor(logging.INFO):  # the line's fields cost more than the metrics
        return
    ACCESS_LOG.info("%s %s %s %.1fms", request.method, request.full_path.rstrip("?"), response.status_code,
                    seconds * 1000, extra={"request_id": request_id, "method": request.method,
                                           "path": request.path, "route": route, "status": response.status_code,
                                           "duration_ms": round(seconds * 1000, 1)})


def create_app(settings: Settings, service: ComputeService) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.extensions[EXTENSION] = AppParts(settings=settings, service=service, policy=PolicyEnforcer(settings))
    build_context = auth.context_builder(settings)

    @app.before_request
    def _gate() -> None:
        g.started = time.perf_counter()
        g.request_id = new_request_id()
        g.log_token = log_context.bind(request_id=g.request_id)
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
        record_request(response, request_id)
        return response

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        token = g.pop("log_token", None)
        if token is not None:
            try:
                log_context.reset(token)
            except ValueError:  # bound in another context (a server that switches them): nothing to undo here
                pass

    register_error_handlers(app)
    for blueprint in view_blueprints():
        app.register_blueprint(blueprint)
    if settings.api.auth_strategy == "keystone":
        app.wsgi_app = auth.wrap_with_keystone(app.wsgi_app, settings)  # type: ignore[method-assign]
    return app
