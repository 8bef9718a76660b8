"""``compute-actions watch SERVER`` and ``compute-actions actions SERVER``: instance actions, followed live.

``watch`` follows a server's newest action (or the one ``--request-id`` names) event by event
until it ends: a line as each event starts and ends, and a progress bar while bytes move (the
live migration's memory and disk from ``/servers/{id}/migrations``, the cold migration's disk
copy from the server's ``progress`` and its flavor, a backup's upload from its image's
``progress``). It prints the result last and exits 0 when the action succeeded, 1 when it ended
in error, 2 when ``--timeout`` passed first, 3 when a request failed.

``actions`` prints the server's actions as a table, each with its events' outcome.

HTTP only, at microversion 2.84 when the endpoint has it (events with host and details), so
they work against ``compute-actions dev``, a production deployment, or Nova itself.

When does an action end? Nova says nothing explicit, so: every event has finished, the server
has no ``task_state`` (or is gone), and both still hold at the next poll. An action that
records no event at all (os-resetState) ends once the server shows no ``task_state`` for
``NO_EVENT_GRACE`` seconds. It failed when an event ended in Error and no later event of the
same name succeeded (a destination that failed its pre-check and was replaced by another is
a retry, not a failure).
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from workers.api_client import (
    ApiError,
    Client,
    add_client_options,
    client_from,
    fail,
    print_json,
    print_table,
    use_rich,
)

WANTED_VERSION = (2, 84)
IMAGES_VERSION = "2.35"  # Nova's image proxy stops at 2.35
NO_EVENT_GRACE = 5.0
GIB = 1 << 30
# What moves bytes, by the server's task_state while it does (Nova's vocabulary). The live
# migration's copy has no event of its own (as in Nova, compute_live_migration closes once the
# job is queued), so progress follows the server, not an open event.
LIVE_COPY_STATES = frozenset({"migrating"})
COLD_COPY_STATES = frozenset({"resize_migrating"})
UPLOAD_STATES = frozenset({"image_uploading", "image_pending_upload"})
EXIT_SUCCESS, EXIT_ERROR, EXIT_TIMEOUT, EXIT_REQUEST_FAILED = 0, 1, 2, 3
# Actions taken while another one holds the server's task_state (they act on it, or ignore it):
# a task_state seen after one of these is still the earlier action's.
SIDE_ACTIONS = frozenset({"live_migration_force_complete", "live_migration_cancel", "cold_migration_cancel",
                          "resetState", "lock", "unlock"})


# ---- reading the API ----------------------------------------------------------------------------
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


# ---- progress -----------------------------------------------------------------------------------
@dataclass
class Progress:
    fraction: float | None  # 0..1, None when unknown
    processed: int | None = None  # bytes
    total: int | None = None
    what: str = ""

    def text(self) -> str:
        parts = []
        if self.what:
            parts.append(self.what)
        if self.total:
            parts.append(f"{human_bytes(self.processed or 0)} of {human_bytes(self.total)}")
        return " ".join(parts)


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def live_copy_progress(client: Client, server: dict[str, Any], mv: str) -> Progress | None:
    """The running live migration's bytes (admins, 2.23+); else the server's progress, once it moved."""
    if version_tuple(mv) >= (2, 23):
        try:
            found = client.get(f"/servers/{server['id']}/migrations", microversion=mv)["migrations"]
        except ApiError as exc:
            if exc.status not in (403, 404):
                raise
            found = []
        for migration in found:
            memory, disk = migration.get("memory_total_bytes") or 0, migration.get("disk_total_bytes") or 0
            if memory + disk:
                done = (migration.get("memory_processed_bytes") or 0) + (migration.get("disk_processed_bytes") or 0)
                what = "memory+disk" if disk else "memory"
                return Progress(min(1.0, done / (memory + disk)), done, memory + disk, what)
        if found:
            return None  # queued or preparing: nothing moves yet
    shown = server_progress(server, "")
    return shown if shown is not None and shown.fraction else None


def server_progress(server: dict[str, Any], what: str) -> Progress | None:
    value = server.get("progress")
    return None if value is None else Progress(min(100, max(0, int(value))) / 100, what=what)


def cold_copy_progress(server: dict[str, Any]) -> Progress | None:
    """The server's progress is the disk copy's; the flavor (2.47+) gives its size."""
    shown = server_progress(server, "disk")
    if shown is None:
        return None
    flavor = server.get("flavor") or {}
    gib = (flavor.get("disk") or 0) + (flavor.get("ephemeral") or 0)
    if gib and shown.fraction is not None:
        shown.total = gib * GIB
        shown.processed = int(shown.total * shown.fraction)
    return shown


def backup_progress(client: Client, server: dict[str, Any], since: float | None) -> Progress | None:
    try:
        images = client.get("/images/detail", microversion=IMAGES_VERSION, query={"server": server["id"]})["images"]
    except ApiError:
        return None
    saving = [i for i in images if i.get("status") == "SAVING"
              and (since is None or (parse_time(i.get("created")) or 0) >= since - 1)]
    if not saving:
        return None
    image = max(saving, key=lambda i: parse_time(i.get("created")) or 0)
    percent = min(100, int(image.get("progress") or 0))
    # 0 until the engine reports upload progress on the image: shown as "saving", not as a stuck 0%
    return Progress(percent / 100 if percent else None, what=f"image {image.get('name')} saving")


# ---- output -------------------------------------------------------------------------------------
def event_label(event: Event) -> str:
    return f"{event.name} on {event.host}" if event.host else event.name


class PlainOutput:
    """One line per change: for logs, CI and pipes."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.began = time.monotonic()
        self.buckets: dict[tuple[Any, ...], int] = {}

    def line(self, text: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f}s] {text}", file=self.stream, flush=True)

    def header(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def started(self, event: Event) -> None:
        self.line(f"start    {event_label(event)}")

    def finished(self, event: Event) -> None:
        took = f" ({event.seconds:.1f}s)" if event.seconds is not None else ""
        why = f": {event.details}" if event.failed and event.details else ""
        self.line(f"{(event.result or 'done'):<8} {event_label(event)}{took}{why}")

    def progress(self, phase: str, shown: Progress) -> None:
        """A line each time the phase passes another tenth (and at its first sight)."""
        bucket = -1 if shown.fraction is None else int(shown.fraction * 10)
        if self.buckets.get(phase) == bucket:
            return
        self.buckets[phase] = bucket
        percent = "" if shown.fraction is None else f"{int(shown.fraction * 100):3d}% "
        self.line(f"progress {phase} {percent}{shown.text()}".rstrip())

    def phases_done(self, success: bool) -> None:
        pass

    def result(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        pass


class RichOutput:
    """A rich display: each event's start and end as a line, a spinner while it runs, a bar per copy."""

    def __init__(self, stream: TextIO) -> None:
        from rich.progress import (
            BarColumn,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        from workers.api_client import console

        self.console = console(True, stream)
        self.display = RichProgress(SpinnerColumn(finished_text="[green]✔"), TextColumn("{task.description}"),
                                    BarColumn(bar_width=30), TaskProgressColumn(), TextColumn("{task.fields[detail]}"),
                                    TimeElapsedColumn(), console=self.console, transient=False)
        self.running: dict[tuple[Any, ...], Any] = {}
        self.phases: dict[str, Any] = {}
        self.display.start()

    def header(self, text: str) -> None:
        self.display.console.print(text)

    def started(self, event: Event) -> None:
        self.display.console.print(f"[cyan]▶[/] {event_label(event)}")
        self.running[event.key] = self.display.add_task(f"[cyan]{event_label(event)}", total=None, detail="")

    def finished(self, event: Event) -> None:
        task = self.running.pop(event.key, None)
        if task is not None:
            self.display.remove_task(task)
        took = f" ({event.seconds:.1f}s)" if event.seconds is not None else ""
        if event.failed:
            why = f": {event.details}" if event.details else ""
            self.display.console.print(f"[red]✘ {event_label(event)}{took}{why}[/]")
        else:
            self.display.console.print(f"[green]✔[/] {event_label(event)}{took}")

    def progress(self, phase: str, shown: Progress) -> None:
        if phase not in self.phases:
            self.phases[phase] = self.display.add_task(f"[magenta]{phase}", total=None, detail="")
        if shown.fraction is None:
            self.display.update(self.phases[phase], detail=shown.text())
        else:
            self.display.update(self.phases[phase], total=100, completed=shown.fraction * 100, detail=shown.text())

    def phases_done(self, success: bool) -> None:
        """A copy seen last at 90% that the action got past (it succeeded) did reach its end."""
        for task in self.phases.values():
            if success:
                self.display.update(task, total=100, completed=100)
            self.display.stop_task(task)

    def result(self, text: str) -> None:
        style = "green" if text.startswith("Result: Success") else "red"
        self.display.console.print(f"[bold {style}]{text}[/]")

    def close(self) -> None:
        if self.display.live.is_started:
            self.display.stop()


# ---- watch --------------------------------------------------------------------------------------
@dataclass
class WatchOptions:
    server: str
    request_id: str | None = None
    timeout: float = 600.0
    interval: float = 0.5
    no_event_grace: float = NO_EVENT_GRACE


class Watch:
    def __init__(self, client: Client, options: WatchOptions, output: PlainOutput | RichOutput,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.options, self.out, self.sleep = client, options, output, sleep
        self.seen: dict[tuple[Any, ...], bool] = {}  # event key -> finished

    def run(self) -> int:
        client, options = self.client, self.options
        mv = negotiate(client)
        server = find_server(client, options.server, mv)
        server_id = server["id"]
        request_id = options.request_id or self.newest_request_id(server_id, mv)
        action = show_action(client, server_id, request_id, mv)
        action_start = parse_time(action.get("start_time"))
        self.out.header(f"Watching {action.get('action')} {request_id} of server {server.get('name')} ({server_id}), "
                        f"started {action.get('start_time')}, on {client.endpoint} (microversion {mv})")
        deadline = time.monotonic() + options.timeout
        began = time.monotonic()
        settled = 0
        while True:
            events = events_of(action)
            self.show(events)
            ended = server is None or not task_state(server)
            if not ended and events and all(e.finished for e in events):
                ended = not self.owns_task_state(server_id, request_id, mv)
            if events:
                ended = ended and all(e.finished for e in events)
                if not ended:
                    self.show_progress(server, mv, action_start)
            else:
                ended = ended and time.monotonic() - began >= options.no_event_grace
            settled = settled + 1 if ended else 0
            if settled >= 2 or (ended and not events):
                return self.finish(action, events, server)
            if time.monotonic() >= deadline:
                running = [e.name for e in events if not e.finished]
                self.out.result(f"Result: timed out after {options.timeout:g}s; {action.get('action')} {request_id} "
                                f"is still running{' (' + ', '.join(running) + ')' if running else ''}")
                return EXIT_TIMEOUT
            self.sleep(options.interval)
            action = show_action(client, server_id, request_id, mv)
            server = get_server(client, server_id, mv)

    def owns_task_state(self, server_id: str, request_id: str, mv: str) -> bool:
        """Is the server's task_state this action's? It is the newest action's that is not a side action."""
        for listed in sorted(list_actions(self.client, server_id, mv),
                             key=lambda a: parse_time(a.get("start_time")) or 0.0, reverse=True):
            if listed.get("request_id") == request_id:
                return True
            if listed.get("action") not in SIDE_ACTIONS:
                return False
        return True

    def newest_request_id(self, server_id: str, mv: str) -> str:
        actions = list_actions(self.client, server_id, mv)
        if not actions:
            raise ApiError(404, f"Server {server_id} has no instance actions.")
        return max(actions, key=lambda a: parse_time(a.get("start_time")) or 0.0)["request_id"]

    def show(self, events: list[Event]) -> None:
        for event in events:
            was = self.seen.get(event.key)
            if was is None:
                self.out.started(event)
            if event.finished and not was:
                self.out.finished(event)
            self.seen[event.key] = event.finished

    def show_progress(self, server: dict[str, Any] | None, mv: str, action_start: float | None) -> None:
        """The phase that moves bytes right now, if any, read from where the API shows it."""
        if server is None:
            return
        state = task_state(server)
        if state in LIVE_COPY_STATES:
            phase, shown = "live migration copy", live_copy_progress(self.client, server, mv)
        elif state in COLD_COPY_STATES:
            phase, shown = "cold migration disk copy", cold_copy_progress(server)
        elif state in UPLOAD_STATES:
            phase, shown = "backup upload", backup_progress(self.client, server, action_start)
        else:
            return
        if shown is not None:
            self.out.progress(phase, shown)

    def finish(self, action: dict[str, Any], events: list[Event], server: dict[str, Any] | None) -> int:
        did_fail, culprit = failed(action, events)
        self.out.phases_done(not did_fail)
        start = parse_time(action.get("start_time"))
        finishes = [t for e in events if (t := parse_time(e.finish)) is not None]
        took = f" in {max(finishes) - start:.1f}s" if start is not None and finishes else ""
        where = "server deleted"
        if server is not None:
            host = server.get("OS-EXT-SRV-ATTR:host")
            where = f"server {server.get('status')}" + (f" on {host}" if host else "")
        name = f"{action.get('action')} {action.get('request_id')}"
        if did_fail:
            at = f" at {event_label(culprit)}" if culprit is not None and culprit.failed else ""
            why = f": {culprit.details}" if culprit is not None and culprit.details else ""
            self.out.result(f"Result: Error: {name} failed{at}{why}{took}; {where}")
            return EXIT_ERROR
        note = "" if events else " (it recorded no events)"
        self.out.result(f"Result: Success: {name} finished{took}{note}; {where}")
        return EXIT_SUCCESS


def watch_command(args: argparse.Namespace) -> int:
    rich_output = use_rich(args)
    output: PlainOutput | RichOutput = RichOutput(sys.stdout) if rich_output else PlainOutput(sys.stdout)
    try:
        return Watch(client_from(args), WatchOptions(args.server, args.request_id, args.timeout, args.interval),
                     output).run()
    except ApiError as exc:
        output.close()
        return fail(str(exc), EXIT_REQUEST_FAILED)
    finally:
        output.close()  # idempotent


# ---- actions ------------------------------------------------------------------------------------
def actions_command(args: argparse.Namespace) -> int:
    client = client_from(args)
    try:
        mv = negotiate(client)
        server = find_server(client, args.server, mv)
        listed = sorted(list_actions(client, server["id"], mv), key=lambda a: parse_time(a.get("start_time")) or 0.0,
                        reverse=True)
        if args.limit:
            listed = listed[: args.limit]
        rows, detailed = [], []
        for index, action in enumerate(listed):
            shown = show_action(client, server["id"], action["request_id"], mv)
            events = events_of(shown)
            outcome = summary(events, server, newest=index == 0, action=shown)
            detailed.append({**shown, "result": outcome})
            culprit = failed(shown, events)[1] if outcome == "Error" else None
            rows.append([action["request_id"], action.get("action"), action.get("start_time"),
                         action.get("user_id"), action.get("message") or "", len(events), outcome,
                         event_label(culprit) if culprit is not None and culprit.failed else ""])
    except ApiError as exc:
        return fail(str(exc), EXIT_REQUEST_FAILED)
    if args.json:
        print_json(detailed)
        return EXIT_SUCCESS
    print_table(f"Actions of {server.get('name')} ({server['id']})",
                ["Request ID", "Action", "Start Time", "User", "Message", "Events", "Result", "Failed at"],
                rows, rich_output=use_rich(args))
    return EXIT_SUCCESS


def add_watch_commands(sub: Any) -> None:
    watch = sub.add_parser("watch", help="follow a server's newest action event by event until it ends",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    watch.add_argument("server", help="server ID or name")
    watch.add_argument("--request-id", help="watch this action instead of the newest")
    watch.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (exit 2)")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    add_client_options(watch)
    watch.set_defaults(client_command=watch_command)
    actions = sub.add_parser("actions", help="a server's instance actions as a table")
    actions.add_argument("server", help="server ID or name")
    actions.add_argument("--limit", type=int, help="only the newest N actions")
    actions.add_argument("--json", action="store_true", help="the actions with their events, as JSON")
    add_client_options(actions)
    actions.set_defaults(client_command=actions_command)
