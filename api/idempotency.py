"""``Idempotency-Key`` on ``POST /servers`` and ``POST /servers/{id}/action``: exactly once, seen from the client.

A request carrying the header reserves the key (SET NX, compute/store/idempotency.py)
before its view runs. The key is scoped by the caller's project and user, and bound to a
fingerprint of the request (method, path, microversion, JSON body):

* the first request runs; a 2xx or 4xx answer is kept (status, body, Content-Type,
  Location, request id) for ``[idempotency] window_seconds``; any other answer (a 503 when
  the broker is down, a 500) gives the key back so that a retry runs again;
* a retry with the same key and request gets the kept answer again, byte for byte, with
  the first request's ``x-openstack-request-id`` and ``Idempotent-Replayed: true``, and
  nothing is done a second time;
* a duplicate that arrives while the first is still running waits for its answer, up to
  ``wait_seconds``, then gets 409 (with ``Retry-After``);
* the same key with another request is a 422.

A reservation whose request never finished (its process died) expires after
``in_flight_ttl_seconds``; then the key may be used again.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, g, request

from api import current, microversions
from api.bodies import json_body
from api.errors import ApiError, bad_request
from compute.models import IdempotencyRecord

LOG = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Content-Type", "Location")
POLL_SECONDS = 0.025
MAX_KEY_LENGTH = 255
INVALID_KEY = f"Invalid {HEADER} header: it must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."


def parse_key(raw: str) -> str:
    """The client's key; a structured-field string (``"..."``, the IETF draft's form) is unquoted."""
    key = raw.strip()
    if len(key) >= 2 and key.startswith('"') and key.endswith('"'):
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        raise bad_request(INVALID_KEY)
    return key


def scope_digest(project_id: str | None, user_id: str | None, key: str) -> str:
    return hashlib.sha256("\0".join((project_id or "", user_id or "", key)).encode()).hexdigest()


def request_fingerprint() -> str:
    """What makes a retry "the same request": method, path, microversion and the decoded JSON body."""
    material = [request.method, request.path, str(microversions.current()), json_body()]
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def keeps(status: int) -> bool:
    """Final answers are kept; a 5xx (503 broker down, 500) lets the client retry."""
    return 200 <= status < 500


def replay(found: IdempotencyRecord) -> Response:
    g.request_id = found.request_id  # stamped on the answer by api/app.py
    response = Response(found.body, status=found.status)
    for name, value in found.headers.items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a view so that the ``Idempotency-Key`` header makes it run at most once per key."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        raw = request.headers.get(HEADER)
        if raw is None:
            return view(*args, **kwargs)
        key = parse_key(raw)
        ctx = current.context()
        options = current.settings().idempotency
        store = current.service().store
        digest = scope_digest(ctx.project_id, ctx.user_id, key)
        mine = IdempotencyRecord(fingerprint=request_fingerprint(), request_id=g.request_id)
        deadline = time.monotonic() + options.wait_seconds
        while True:
            found = store.reserve_idempotency_key(digest, mine, options.in_flight_ttl_seconds)
            if found is None:
                break
            if found.fingerprint != mine.fingerprint:
                raise ApiError(422, f"{HEADER} {key} was already used for a different request "
                                    "(method, path, microversion or body).")
            if found.state == "done":
                return replay(found)
            if time.monotonic() >= deadline:
                raise ApiError(409, f"A request with {HEADER} {key} is still in progress; retry later.",
                               headers={"Retry-After": "1"})
            time.sleep(POLL_SECONDS)
        return _run_once(view, args, kwargs, store, digest, mine, options.window_seconds)

    return wrapper


def _run_once(view: Callable[..., Any], args: Any, kwargs: Any, store: Any, digest: str,
              mine: IdempotencyRecord, window_seconds: float) -> Response:
    kept = False
    try:
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - the app's error handlers answer it, as Flask would
            response = current_app.make_response(current_app.handle_user_exception(exc))
        if keeps(response.status_code):
            answer = mine.model_copy(update={
                "state": "done", "status": response.status_code, "body": response.get_data(as_text=True),
                "headers": {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers},
            })
            try:
                if not store.finish_idempotency_key(digest, answer, window_seconds):
                    LOG.warning("%s reservation %s expired before its answer; the answer was not kept",
                                HEADER, digest)
                kept = True  # kept, or no longer ours: nothing to give back either way
            except Exception:  # the action is done: the client still gets its answer
                LOG.exception("could not keep the answer of %s reservation %s", HEADER, digest)
        return response
    finally:
        if not kept:
            try:
                store.release_idempotency_key(digest, mine.token)
            except Exception:  # the reservation expires on its own
                LOG.exception("could not release %s reservation %s", HEADER, digest)
