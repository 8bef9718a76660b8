"""The fields of the engine's log lines (tasks/flow.py): who ran what, for how long.

They are also bound in compute/log_context.py for a delivery; the lines give them explicitly
so that any handler (a test's, a shipper's) sees them without the CLI's filter.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

from compute.models import FlowRun


def worker_name() -> str:
    """The process a line comes from: ``host:pid`` (the lease owner adds a per-delivery suffix)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def seconds_since(iso_time: str) -> float:
    """Seconds from a stored ``utcnow()`` time to now (0 for a time that does not parse)."""
    try:
        then = dt.datetime.fromisoformat(iso_time).replace(tzinfo=dt.UTC)
    except ValueError:
        return 0.0
    return max(0.0, (dt.datetime.now(dt.UTC) - then).total_seconds())


def run_fields(run: FlowRun, seconds: float, outcome: str) -> dict[str, Any]:
    return {"request_id": run.request_id, "action": run.flow, "server_id": run.instance_uuid,
            "worker": worker_name(), "outcome": outcome, "duration_ms": round(seconds * 1000, 1)}


def step_fields(run: FlowRun, step: str, seconds: float, outcome: str) -> dict[str, Any]:
    return {**run_fields(run, seconds, outcome), "step": step, "duration_ms": round(max(0.0, seconds) * 1000, 3)}
