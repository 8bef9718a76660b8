"""os-quota-class-sets (nova quota_classes.py): the ``default`` class is where the defaults can be changed.

GET shows a class's overrides over the ``[quota]`` options (any name; only ``default``
changes what projects get); PUT sets overrides, with no usage check, as in Nova. Tempest's
quota tests read and restore the ``default`` class through this resource.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api import current, microversions, schemas
from api.bodies import json_body
from api.errors import bad_request
from api.quota_view import (
    check_query,
    quota_body,
    quota_class_resources,
    quota_class_settable,
    quota_update_schema,
    to_limit,
)
from compute import quotas

bp = Blueprint("quota_class_sets", __name__, url_prefix="/v2.1")

SHOW_RULE = "os_compute_api:os-quota-class-sets:show"
UPDATE_RULE = "os_compute_api:os-quota-class-sets:update"


@bp.get("/os-quota-class-sets/<quota_class>")
def show_quota_class(quota_class: str) -> Any:
    mv = microversions.current()
    check_query((), strict=mv >= (2, 102))
    current.authorize(SHOW_RULE, {})
    overrides = current.service().store.class_quota_overrides(quota_class)
    values = quotas.class_limits(current.settings().quota, overrides)
    return jsonify({"quota_class_set": quota_body(values, quota_class_resources(mv), quota_class)})


@bp.put("/os-quota-class-sets/<quota_class>")
def update_quota_class(quota_class: str) -> Any:
    mv = microversions.current()
    body = json_body()
    schemas.validate(quota_update_schema("quota_class_set", quota_class_settable(mv), force=False), body)
    current.authorize(UPDATE_RULE, {})
    if len(quota_class) > 255:  # oslo strutils.check_string_length through nova's InvalidInput
        raise bad_request("Invalid input received: quota_class_name has more than 255 characters.")
    values = {k: to_limit(v) for k, v in body["quota_class_set"].items()}
    overrides = current.service().store.update_class_quotas(quota_class, values)
    values = quotas.class_limits(current.settings().quota, overrides)
    return jsonify({"quota_class_set": quota_body(values, quota_class_resources(mv))})
