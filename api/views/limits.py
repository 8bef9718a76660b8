"""GET /limits (nova limits.py, views/limits.py): the project's absolute limits and usage; ``rate`` is always empty.

``?tenant_id=`` reads another project's and needs ``os_compute_api:limits:other_project``
as well (checked whenever the parameter is present, as in Nova). The numbers are the
project's quotas (not a user's), with usage from the same counters the create checks.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from api import current, microversions
from api.quota_view import absolute_limits, check_query
from compute import quotas

bp = Blueprint("limits", __name__, url_prefix="/v2.1")

RULE = "os_compute_api:limits"
OTHER_PROJECT_RULE = "os_compute_api:limits:other_project"


@bp.get("/limits")
def show_limits() -> Any:
    mv = microversions.current()
    check_query(("tenant_id",), strict=mv >= (2, 75))
    ctx = current.context()
    current.authorize(RULE, {})
    project_id = ctx.project_id or ""
    if "tenant_id" in request.args:
        project_id = request.args.getlist("tenant_id")[-1]
        current.authorize(OTHER_PROJECT_RULE, {"project_id": ctx.project_id, "user_id": ctx.user_id})
    snap = current.service().store.quota_snapshot(project_id)
    options = current.settings().quota
    absolute = absolute_limits(quotas.project_limits(options, snap), quotas.in_use(snap), mv)
    return jsonify({"limits": {"rate": [], "absolute": absolute}})
