"""A server's instance actions as the compute API shows them: the server, its actions, their events.

What ``watch`` and ``actions`` (workers/watch.py) both read, and how they judge an action's outcome
from its events, kept apart from following one live and from drawing it.
"""
from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from workers.api_client import ApiError, Client

WANTED_VERSION = (2, 84)


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def negotiate(client: Client) -> str:
    """2.84, or the endpoint's newest microversion when it is older."""
    try:
        doc = client.get(client.endpoint + "/")
        newest = (doc.get("version") or {}).get("version") or "2.1"
    except (ApiError, AttributeError, ValueError):
        return "{}.{}".format(*WANTED_VERSION)
    best = min(version_tuple(newest), WANTED_VERSION)
    return f"{best[0]}.{best[1]}"


def find_server(client: Client, ref: str, mv: str) -> dict[str, Any]:
    """By id, else by exact name (the caller's project, then every project for an admin)."""
    try:
        return client.get(f"/servers/{urllib.parse.quote(ref, safe='')}", microversion=mv)["server"]
    except ApiError as exc:
        if exc.status not in (400, 404):
            raise
    for extra in ({}, {"all_tenants": "1"}):
        try:
            found = client.get("/servers/detail", microversion=mv,
                               query={"name": f"^{re.escape(ref)}$", **extra})["servers"]
        except ApiError as exc:
            if exc.status in (400, 403):
                continue
            raise
        exact = [s for s in found if s.get("name") == ref]
        if len(exact) > 1:
            raise ApiError(409, f"More than one server is named {ref}; give its ID.")
        if exact:
            return exact[0]
    raise ApiError(404, f"No server with a name or ID of '{ref}' exists.")


def get_server(client: Client, server_id: str, mv: str) -> dict[str, Any] | None:
    try:
        return client.get(f"/servers/{server_id}", microversion=mv)["server"]
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def list_actions(client: Client, server_id: str, mv: str) -> list[dict[str, Any]]:
    return client.get(f"/servers/{server_id}/os-instance-actions", microversion=mv)["instanceActions"]


def show_action(client: Client, server_id: str, request_id: str, mv: str) -> dict[str, Any]:
    return client.get(f"/servers/{server_id}/os-instance-actions/{urllib.parse.quote(request_id, safe='')}",
                      microversion=mv)["instanceAction"]


@dataclass
class Event:
    name: str
    start: str | None
    finish: str | None
    result: str | None
    host: str | None
    details: str | None

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return self.name, self.start, self.host

    @property
    def finished(self) -> bool:
        return self.finish is not None

    @property
    def failed(self) -> bool:
        return (self.result or "").lower() == "error"

    @property
    def seconds(self) -> float | None:
        start, finish = parse_time(self.start), parse_time(self.finish)
        return None if start is None or finish is None else max(0.0, finish - start)


def events_of(action: dict[str, Any]) -> list[Event]:
    events = [Event(e.get("event", "?"), e.get("start_time"), e.get("finish_time"), e.get("result"),
                    e.get("host"), e.get("details")) for e in action.get("events") or []]
    return sorted(events, key=lambda e: parse_time(e.start) or 0.0)


def failure_of(events: list[Event]) -> Event | None:
    """The event that made the action fail: an Error that no later event of its name made good."""
    for index, event in enumerate(events):
        if event.failed and not any(later.name == event.name and (later.result or "").lower() == "success"
                                    for later in events[index + 1:]):
            return event
    return None


def failed(action: dict[str, Any], events: list[Event]) -> tuple[bool, Event | None]:
    """Did the action fail, and which event says why (None when no event does)?

    An Error event that no later event of its name made good fails it. Without one, the action's
    message decides: the engine sets ``Error`` when a flow fails (say, a live migration's copy,
    which has no event of its own), and also, as Nova does, when a cold migration's host failed
    ``prep_resize`` and another was taken, which is a retry (its Error event was made good).
    """
    culprit = failure_of(events)
    if culprit is not None:
        return True, culprit
    retried = any(e.failed for e in events)
    if (action.get("message") or "").lower() == "error" and not retried:
        explained = [e for e in events if e.details]
        return True, explained[-1] if explained else None
    return False, None


def summary(events: list[Event], server: dict[str, Any] | None, newest: bool,
            action: dict[str, Any] | None = None) -> str:
    """An action's outcome as the table shows it: running, Success, Error or '-' (no events)."""
    if any(not e.finished for e in events) or (newest and server is not None and task_state(server)):
        return "running"
    if not events:
        return "-"
    return "Error" if failed(action or {}, events)[0] else "Success"


def task_state(server: dict[str, Any]) -> str | None:
    return server.get("OS-EXT-STS:task_state")
