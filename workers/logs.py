"""The CLI's logging: one line per record, with the request's fields, as text or JSON (``[logging] format``).

A record gets its fields (request id, action, server, step, worker, and for an API request
method, path, route, status, duration) from ``extra=`` where the line gives them, else from
what is bound in compute/log_context.py while it is logged. The text format appends them as
``key=value``; the JSON format makes each line one object with them as keys, for a log
shipper. Stdlib only: a Formatter each, no dependency.

Celery's own per-delivery lines ("Task ... received", "Task ... succeeded") and werkzeug's
request lines in dev are DEBUG-only here: the engine's per-step line and the API's access line
say the same with the action's fields.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

from compute import log_context
from compute.settings import Settings

LEVEL_ENV = "COMPUTE_ACTIONS_LOG_LEVEL"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Loggers whose INFO lines repeat, once per delivery or request, what the per-step and access lines say.
QUIET_AT_INFO = ("celery.app.trace", "celery.worker.strategy", "werkzeug")


class ContextFilter(logging.Filter):
    """Copy the bound request fields onto each record that does not carry them itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context.current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in log_context.FIELDS if getattr(record, name, None) is not None}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        if not fields:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below the fields
        return first + "".join(f" {k}={v}" for k, v in fields.items()) + newline + rest


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the fields, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            body["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(body, default=str)


def formatter_for(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.logging.format == "json" else TextFormatter(TEXT_FORMAT)


def configure_logging(settings: Settings, level: str | None = None) -> logging.Handler:
    """Root logging to stderr in the configured format; returns the handler it installed."""
    level = (level or os.environ.get(LEVEL_ENV) or "INFO").upper()
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(settings))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    debug = logging.getLevelName(level) == logging.DEBUG
    for name in QUIET_AT_INFO:  # set either way: Celery may have set its own loggers' levels before
        logging.getLogger(name).setLevel(level if debug else logging.WARNING)
    for name, name_level in settings.logging.levels.items():
        logging.getLogger(name).setLevel(name_level.upper())
    return handler
