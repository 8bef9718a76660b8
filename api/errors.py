"""Every failure leaves the API as a Nova fault body: ``{"<faultName>": {"code": N, "message": "..."}}``.

Views raise ApiError (or a compute.errors exception); the handlers registered here are the
only place an HTTP status is chosen for an exception, so a code means the same thing on
every route (nova/api/openstack/wsgi.py ``Fault`` and ``expected_errors``).
"""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import TimeoutError as StoreTimeoutError
from werkzeug.exceptions import HTTPException

from compute import errors as domain

LOG = logging.getLogger(__name__)

UNEXPECTED_MESSAGE = "Unexpected API Error. Please contact the administrator"
NOT_FOUND_MESSAGE = "The resource could not be found."
GONE_MESSAGE = "This resource is no longer available.  No forwarding address is given."
TOO_LARGE_MESSAGE = "Request is too large."
UNAVAILABLE_MESSAGE = "The compute service is temporarily unavailable; try again later."

# The store (Redis) or the broker cannot be reached: every request fails the same way until it
# is back, so the answer is Nova's 503 fault and one log line per request, not a traceback each.
BACKEND_UNAVAILABLE: tuple[type[Exception], ...] = (StoreConnectionError, StoreTimeoutError, BrokerUnavailable)

FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}

# Order matters: the first matching class wins, so subclasses come before their bases.
DOMAIN_CODES: tuple[tuple[type[domain.ComputeError], int], ...] = (
    (domain.NotFound, 404),
    (domain.Invalid, 400),
    (domain.NoValidHost, 400),
    (domain.Conflict, 409),
    (domain.QueueUnavailable, 503),
)


class ApiError(Exception):
    """An HTTP answer decided by the API layer itself (validation, policy, auth, versions)."""

    def __init__(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str = NOT_FOUND_MESSAGE) -> ApiError:
    return ApiError(404, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def fault_name(code: int) -> str:
    return FAULT_NAMES.get(code, "computeFault")


def fault_response(code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({fault_name(code): {"code": code, "message": message}})
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def domain_code(exc: domain.ComputeError) -> int | None:
    for cls, code in DOMAIN_CODES:
        if isinstance(exc, cls):
            return code
    return None


def _domain_message(exc: domain.ComputeError, code: int) -> str:
    if exc.message:
        return exc.message
    if code == 503:
        return UNAVAILABLE_MESSAGE
    return UNEXPECTED_MESSAGE


def _http_message(exc: HTTPException) -> str:
    code = exc.code or 500
    if code == 404:
        return NOT_FOUND_MESSAGE
    if code == 405:
        return f"The method {request.method} is not allowed for this resource."
    if code == 413:
        return TOO_LARGE_MESSAGE
    return exc.description or exc.name


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return fault_response(exc.code, exc.message, exc.headers)

    @app.errorhandler(domain.ComputeError)
    def _domain_error(exc: domain.ComputeError) -> Response:
        code = domain_code(exc)
        if code is None:
            LOG.exception("Unmapped domain error")
            return fault_response(500, UNEXPECTED_MESSAGE)
        return fault_response(code, _domain_message(exc, code))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        headers = {}
        allowed = getattr(exc, "valid_methods", None)
        if code == 405 and allowed:
            headers["Allow"] = ", ".join(allowed)
        return fault_response(code, _http_message(exc), headers)

    def _backend_unavailable(exc: Exception) -> Response:
        which = "broker" if isinstance(exc, BrokerUnavailable) else "store"
        route = request.url_rule.rule if request.url_rule is not None else request.path[:200]
        LOG.error("%s %s: the %s is unavailable (%s: %s)", request.method, route, which, type(exc).__name__, exc)
        return fault_response(503, UNAVAILABLE_MESSAGE)

    for unavailable in BACKEND_UNAVAILABLE:
        app.register_error_handler(unavailable, _backend_unavailable)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        LOG.exception("Unexpected API error")
        return fault_response(500, UNEXPECTED_MESSAGE)
