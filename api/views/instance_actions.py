"""Instance actions: how a caller learns what became of a 202 (nova instance_actions.py).

What is shown depends on the microversion and on two policies: ``...:events`` (events
below 2.51; traceback and host at every version) and ``...:events:details`` (2.84+).
"""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify

from api import current, links, microversions, paging, query
from api.errors import bad_request
from api.lookup import allowed_for_server, authorize_for_server, find_server
from api.server_view import host_id
from api.timestamps import stored_time
from compute.errors import NotFound
from compute.models import ActionEvent, Instance, InstanceAction
from compute.store import MarkerNotFound

bp = Blueprint("instance_actions", __name__, url_prefix="/v2.1")

LIST_RULE = "os_compute_api:os-instance-actions:list"
SHOW_RULE = "os_compute_api:os-instance-actions:show"
EVENTS_RULE = "os_compute_api:os-instance-actions:events"
EVENT_DETAILS_RULE = "os_compute_api:os-instance-actions:events:details"

ACTION_KEYS = ("action", "instance_uuid", "message", "project_id", "request_id", "start_time", "user_id")
EVENT_KEYS = ("event", "start_time", "finish_time", "result")
_REQUEST_ID = re.compile(r"^req-[0-9a-fA-F-]{1,64}$")


def list_query_parsers(mv: microversions.APIVersion) -> dict[str, query.Parser]:
    parsers: dict[str, query.Parser] = {
        "limit": query.non_negative_int,
        "marker": query.text,
        "changes-since": query.timestamp,
    }
    if mv >= (2, 66):
        parsers["changes-before"] = query.timestamp
    return parsers


def action_view(action: InstanceAction, mv: microversions.APIVersion) -> dict[str, Any]:
    view = {key: getattr(action, key) for key in ACTION_KEYS}
    if mv >= (2, 58):
        view["updated_at"] = action.updated_at
    return view


def lookup(server_id: str) -> Instance:
    return find_server(server_id, allow_deleted=microversions.current() >= (2, 21))


@bp.get("/servers/<server_id>/os-instance-actions")
def list_instance_actions(server_id: str) -> Any:
    mv = microversions.current()
    params = query.parse(list_query_parsers(mv), strict=True) if mv >= (2, 58) else {}
    since, before = params.get("changes-since"), params.get("changes-before")
    if since is not None and before is not None and before < since:
        raise bad_request("The value of changes-since must be less than or equal to changes-before.")
    instance = lookup(server_id)
    authorize_for_server(LIST_RULE, instance)
    body: dict[str, Any] = {}
    if mv < (2, 58):
        actions = current.service().list_actions(instance)
    else:
        marker = params.get("marker")
        limit = paging.effective_limit(params.get("limit"))
        keep = (lambda a: _updated_within(a, since, before)) if since is not None or before is not None else None
        try:
            actions = current.service().store.page_actions(instance.id, limit, marker=marker, keep=keep)
        except MarkerNotFound:
            raise bad_request(f"Marker {marker} could not be found.") from None
        if paging.page_is_full(actions, limit):
            body["links"] = [links.next_link(f"servers/{instance.id}/os-instance-actions",
                                             actions[-1].request_id)]
    body = {"instanceActions": [action_view(a, mv) for a in actions], **body}
    return jsonify(body)


def _updated_within(action: InstanceAction, since: Any, before: Any) -> bool:
    updated = stored_time(action.updated_at)
    if updated is None:
        return since is None and before is None
    return (since is None or updated >= since) and (before is None or updated <= before)


@bp.get("/servers/<server_id>/os-instance-actions/<request_id>")
def show_instance_action(server_id: str, request_id: str) -> Any:
    mv = microversions.current()
    if mv >= (2, 102):
        query.parse({}, strict=True)
    instance = lookup(server_id)
    authorize_for_server(SHOW_RULE, instance)
    can_see_events = allowed_for_server(EVENTS_RULE, instance)
    show_details = mv >= (2, 84) and allowed_for_server(EVENT_DETAILS_RULE, instance)
    if not _REQUEST_ID.match(request_id):
        raise NotFound(f"Action {request_id} not found")
    action, events = current.service().get_action(instance, request_id)
    view = action_view(action, mv)
    if can_see_events or mv >= (2, 51):
        project_id = action.project_id or instance.project_id
        view["events"] = [
            event_view(e, mv, project_id, admin_keys=can_see_events, details=show_details)
            for e in reversed(events)
        ]
    return jsonify({"instanceAction": view})


def event_view(event: ActionEvent, mv: microversions.APIVersion, project_id: str,
               *, admin_keys: bool, details: bool) -> dict[str, Any]:
    view: dict[str, Any] = {key: getattr(event, key) for key in EVENT_KEYS}
    if admin_keys:
        view["traceback"] = event.traceback
    if mv >= (2, 62):
        if admin_keys:
            view["host"] = event.host
        view["hostId"] = host_id(project_id, event.host)
    if details:
        view["details"] = event.details
    return view
