"""Quota bodies per microversion, and the request pieces os-quota-sets, os-quota-class-sets and /limits share.

Which resources a body shows (nova quota_sets.py, quota_classes.py, limits.py):

* quota sets: all fourteen below 2.36; 2.36 drops fixed_ips, floating_ips,
  security_groups, security_group_rules; 2.57 also drops the three injected_file*.
* quota classes: below 2.50 the network four are shown but not server_groups and
  server_group_members; 2.50 swaps them; 2.57 drops the injected_file* three.
* limits: 2.36 drops maxTotalFloatingIps, maxSecurityGroups, maxSecurityGroupRules and
  their "used" keys; 2.39 drops maxImageMeta; 2.57 drops maxPersonality(Size).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from flask import request

from api import schemas
from api.errors import bad_request
from api.microversions import APIVersion
from compute.quotas import (
    INJECTED_FILE_RESOURCES,
    MAX_LIMIT,
    NETWORK_RESOURCES,
    RESOURCES,
    UNLIMITED,
)

SERVER_GROUP_RESOURCES = ("server_group_members", "server_groups")
_QUOTA_TEXT = re.compile(r"^-?[0-9]+$")


def quota_set_resources(mv: APIVersion) -> tuple[str, ...]:
    hidden: set[str] = set()
    if mv >= (2, 36):
        hidden.update(NETWORK_RESOURCES)
    if mv >= (2, 57):
        hidden.update(INJECTED_FILE_RESOURCES)
    return tuple(r for r in RESOURCES if r not in hidden)


def quota_class_resources(mv: APIVersion) -> tuple[str, ...]:
    hidden: set[str] = set()
    if mv >= (2, 50):
        hidden.update(NETWORK_RESOURCES)
    else:
        hidden.update(SERVER_GROUP_RESOURCES)
    if mv >= (2, 57):
        hidden.update(INJECTED_FILE_RESOURCES)
    return tuple(r for r in RESOURCES if r not in hidden)


def quota_class_settable(mv: APIVersion) -> tuple[str, ...]:
    """A class PUT below 2.50 accepts server_groups* although the body does not show them."""
    return RESOURCES if mv < (2, 50) else quota_class_resources(mv)


def quota_body(values: Mapping[str, Any], shown: Iterable[str], id_: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {} if id_ is None else {"id": str(id_)}
    body.update({r: values[r] for r in shown if r in values})
    return body


# ---- absolute limits --------------------------------------------------------------------------
_LIMIT_NAMES = {
    "cores": ["maxTotalCores"],
    "injected_file_content_bytes": ["maxPersonalitySize"],
    "injected_files": ["maxPersonality"],
    "instances": ["maxTotalInstances"],
    "key_pairs": ["maxTotalKeypairs"],
    "floating_ips": ["maxTotalFloatingIps"],
    "metadata_items": ["maxServerMeta", "maxImageMeta"],
    "ram": ["maxTotalRAMSize"],
    "security_group_rules": ["maxSecurityGroupRules"],
    "security_groups": ["maxSecurityGroups"],
    "server_group_members": ["maxServerGroupMembers"],
    "server_groups": ["maxServerGroups"],
}
_USED_NAMES = {
    "totalRAMUsed": "ram",
    "totalCoresUsed": "cores",
    "totalInstancesUsed": "instances",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
    "totalServerGroupsUsed": "server_groups",
}


def absolute_limits(limits: Mapping[str, int], used: Mapping[str, int], mv: APIVersion) -> dict[str, int]:
    """nova/api/openstack/compute/views/limits.py ``build``."""
    filtered: set[str] = set()
    if mv >= (2, 36):
        filtered.update(("floating_ips", "security_groups", "security_group_rules"))
    if mv >= (2, 57):
        filtered.update(("injected_files", "injected_file_content_bytes"))
    found: dict[str, int] = {}
    for resource in RESOURCES:
        if resource in _LIMIT_NAMES and resource not in filtered:
            for name in _LIMIT_NAMES[resource]:
                if name == "maxImageMeta" and mv >= (2, 39):
                    continue
                found[name] = limits[resource]
    for name, resource in _USED_NAMES.items():
        if resource not in filtered:
            found[name] = used[resource]
    return found


# ---- request pieces ---------------------------------------------------------------------------
def check_query(allowed: Iterable[str], *, strict: bool) -> None:
    """Nova's query schemas with ``additionalProperties: false`` (2.75, 2.102): other keys are a 400."""
    if not strict:
        return
    unexpected = [k for k in request.args if k not in set(allowed)]
    if unexpected:
        listed = ", ".join(repr(k) for k in unexpected)
        verb = "was" if len(unexpected) == 1 else "were"
        raise bad_request(f"Additional properties are not allowed ({listed} {verb} unexpected)")


def user_id_query() -> str | None:
    """``?user_id=``: the first non-empty value, as Nova's ``parse_qs(...)['user_id'][0]``."""
    values = [v for v in request.args.getlist("user_id") if v]
    return values[0] if values else None


def quota_value() -> schemas.Validator:
    """Nova's ``_common_quota``: an integer or a string ``^-?[0-9]+$``, -1..2147483647.

    Nova applies the bounds to JSON integers only (jsonschema), so a string like
    ``"99999999999"`` reaches its database; here strings are bounded too, and are measured
    before ``int()`` so a long one is a 400.
    """
    def check(value: Any, path: schemas.Path) -> None:
        if isinstance(value, str):
            if not _QUOTA_TEXT.match(value):
                raise schemas.SchemaError(path, value, f"{value!r} does not match '^-?[0-9]+$'")
            number = text_to_limit(value)
        elif schemas.is_integer(value):
            number = value
        else:
            raise schemas.SchemaError(path, value, f"{value!r} is not of type 'integer', 'string'")
        if number is None or number > MAX_LIMIT:
            raise schemas.SchemaError(path, value, f"{value!r} is greater than the maximum of {MAX_LIMIT}")
        if number < UNLIMITED:
            raise schemas.SchemaError(path, value, f"{value!r} is less than the minimum of {UNLIMITED}")

    return check


def text_to_limit(value: str) -> int | None:
    """The integer of ``^-?[0-9]+$`` text, or None when it has more digits than any limit."""
    negative = value.startswith("-")
    digits = value.lstrip("-").lstrip("0") or "0"
    if len(digits) > len(str(MAX_LIMIT)):
        return None if not negative else -(10 ** 11)
    return -int(digits) if negative else int(digits)


def to_limit(value: int | str) -> int:
    """A value the schema passed, as an int."""
    if isinstance(value, str):
        number = text_to_limit(value)
        assert number is not None
        return number
    return value


def quota_update_schema(wrapper: str, resources: Iterable[str], *, force: bool) -> schemas.Validator:
    properties: dict[str, schemas.Validator] = {r: quota_value() for r in resources}
    if force:
        properties["force"] = schemas.boolean_like()
    return schemas.obj({wrapper: schemas.obj(properties)}, required=[wrapper])


def is_true(value: Any) -> bool:
    """oslo's ``strutils.bool_from_string`` on a value the boolean schema passed."""
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "on", "yes"))
