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
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.api_client import (
    ApiError,
    Client,
    add_client_options,
    client_from,
    fail,
    print_json_if_asked,
    print_table,
    use_rich,
)
from workers.instance_actions import (
    Event,
    events_of,
    failed,
    find_server,
    get_server,
    list_actions,
    negotiate,
    parse_time,
    show_action,
    summary,
    task_state,
)
from workers.watch_output import PlainOutput, RichOutput, event_label
from workers.watch_progress import (
    backup_progress,
    cold_copy_progress,
    live_copy_progress,
)

NO_EVENT_GRACE = 5.0
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
    if print_json_if_asked(args, detailed):
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
