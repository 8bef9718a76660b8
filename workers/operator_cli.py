"""The operator commands of ``compute-actions``: HTTP clients of any endpoint (workers/cli.py adds them).

``watch`` and ``actions`` (workers/watch.py) read instance actions; ``fleet`` (workers/fleet_cli.py)
drives the simulated fleet through the admin-only fleet control extension.
"""
from __future__ import annotations

import argparse
from typing import Any

from workers.api_client import ApiError, fail
from workers.fleet_cli import add_fleet_command
from workers.watch import EXIT_REQUEST_FAILED, add_watch_commands


def add_operator_commands(sub: Any) -> None:
    add_watch_commands(sub)
    add_fleet_command(sub)


def run_operator_command(args: argparse.Namespace, rest: list[str]) -> int | None:
    """Run the operator command ``args`` names, or None when it is not one."""
    command = getattr(args, "client_command", None)
    if command is None:
        return None
    if rest:
        return fail(f"unrecognized arguments: {' '.join(rest)}", 2)
    try:
        return int(command(args))
    except ApiError as exc:
        return fail(str(exc), EXIT_REQUEST_FAILED)
    except KeyboardInterrupt:
        return 130
