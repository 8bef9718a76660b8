"""os-quota-sets (nova quota_sets.py): show, detail, defaults, update and delete a project's (or user's) quotas.

Policy targets are ``{"project_id": <path id>}``: with the classic defaults a member of the
project may read its quotas, only admins change them. Nova also asks Keystone whether the
project exists (``identity.verify_project_id``); with no Keystone to ask (noauth2) every
id is taken, as Nova does when Keystone cannot be reached.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api import current, microversions, schemas
from api.bodies import json_body
from api.errors import bad_request
from api.quota_view import (
    check_query,
    is_true,
    quota_body,
    quota_set_resources,
    quota_update_schema,
    to_limit,
    user_id_query,
)
from compute import errors, quotas

bp = Blueprint("quota_sets", __name__, url_prefix="/v2.1")

RULE = "os_compute_api:os-quota-sets:%s"
QUERY_KEYS = ("user_id",)


def _authorize(action: str, project_id: str) -> None:
    current.authorize(RULE % action, {"project_id": project_id})


def _snapshot(project_id: str, user_id: str | None) -> Any:
    return current.service().store.quota_snapshot(project_id, user_id)


def _show(project_id: str, rule: str, read: Any) -> Any:
    """show and detail: the same checks, then the limits read as ``read`` reads them."""
    mv = microversions.current()
    check_query(QUERY_KEYS, strict=mv >= (2, 75))
    _authorize(rule, project_id)
    user_id = user_id_query()
    values = read(current.settings().quota, _snapshot(project_id, user_id), user=user_id is not None)
    return jsonify({"quota_set": quota_body(values, quota_set_resources(mv), project_id)})


@bp.get("/os-quota-sets/<project_id>")
def show_quota_set(project_id: str) -> Any:
    return _show(project_id, "show", quotas.limits)


@bp.get("/os-quota-sets/<project_id>/detail")
def show_quota_set_detail(project_id: str) -> Any:
    return _show(project_id, "detail", quotas.detail)


@bp.get("/os-quota-sets/<project_id>/defaults")
def show_quota_defaults(project_id: str) -> Any:
    mv = microversions.current()
    _authorize("defaults", project_id)
    values = quotas.defaults(current.settings().quota, _snapshot(project_id, None))
    return jsonify({"quota_set": quota_body(values, quota_set_resources(mv), project_id)})


@bp.put("/os-quota-sets/<project_id>")
def update_quota_set(project_id: str) -> Any:
    mv = microversions.current()
    shown = quota_set_resources(mv)
    body = json_body()
    schemas.validate(quota_update_schema("quota_set", shown, force=True), body)
    check_query(QUERY_KEYS, strict=mv >= (2, 75))
    _authorize("update", project_id)
    user_id = user_id_query()
    requested = body["quota_set"]
    force = is_true(requested.get("force", False))
    values = {k: to_limit(v) for k, v in requested.items() if k != "force"}
    options = current.settings().quota
    try:
        snap = current.service().store.update_quotas(
            project_id, user_id, values,
            quotas.validate_update(options, values.items(), user=user_id is not None, force=force))
    except errors.Invalid as exc:
        raise bad_request(exc.message) from None
    limits = quotas.limits(options, snap, user=user_id is not None)
    return jsonify({"quota_set": quota_body(limits, shown)})


@bp.delete("/os-quota-sets/<project_id>")
def delete_quota_set(project_id: str) -> Response:
    mv = microversions.current()
    check_query(QUERY_KEYS, strict=mv >= (2, 75))
    _authorize("delete", project_id)
    current.service().store.delete_quotas(project_id, user_id_query())
    return Response(b"", status=202, mimetype="application/json")
