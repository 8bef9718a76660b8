"""Who a log line is about: the request being served, or the action a worker is running.

The API binds the request id for the length of a request, the engine binds request id,
action, server and worker for the length of a delivery; the log formatter of the CLI
(workers/logs.py) adds the bound fields to every line logged meanwhile, whichever module
logged it. A context variable, so each thread (gthread, Celery's thread pool) has its own.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token

# The fields a line may carry, in the order the text format prints them.
FIELDS = ("request_id", "action", "server_id", "step", "worker", "method", "path", "route", "status",
          "duration_ms", "outcome")

_bound: ContextVar[dict[str, object]] = ContextVar("compute_actions_log_context", default={})  # noqa: B039


def current() -> dict[str, object]:
    """The fields bound now (a copy)."""
    return dict(_bound.get())


def bind(**fields: object) -> Token[dict[str, object]]:
    """Add ``fields`` to the bound ones until :func:`reset` with the token returned."""
    return _bound.set({**_bound.get(), **fields})


def reset(token: Token[dict[str, object]]) -> None:
    _bound.reset(token)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)
