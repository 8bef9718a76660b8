"""Hostile input from the reliability issue: every 5xx here was a bug.

Python refuses int() of text longer than 4,300 digits (ValueError), and its ``re`` raises
OverflowError and RecursionError on some patterns and backtracks for minutes on others. The
reproducers use D, 4,301 nines.
"""
from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import query
from compute.models import Instance
from tests.support.contexts import IMAGE_ID

D = "9" * 4301
ADMIN = {"X-Auth-Token": "admin:admin"}
OWNER = {"X-Auth-Token": "alice:demo"}
EVIL_NAME = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"  # 30 a's and a "!": (a+)+$ backtracks 2**30 ways on it


def fault_of(response: Any) -> tuple[str, int, str]:
    body = response.get_json()
    assert isinstance(body, dict) and len(body) == 1, response.get_data(as_text=True)[:300]
    (key, inner), = body.items()
    return key, inner["code"], inner["message"]


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def every_api_route(app: Flask, server_id: str) -> list[tuple[str, str]]:
    """(method, path) for every rule under /v2.1/ and every method it takes, ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v2.1/") or rule.rule == "/v2.1/":
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", server_id if argument == "server_id" else "1")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


# ---- 1. numbers longer than int() takes ------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"OpenStack-API-Version": f"compute 2.{D}"},
    {"X-OpenStack-Nova-API-Version": f"2.{D}"},
    {"OpenStack-API-Version": f"compute {D}.1"},
], ids=["OpenStack-API-Version", "X-OpenStack-Nova-API-Version", "huge-major"])
def test_huge_microversion__is_a_406_on_every_route(app: Flask, client: FlaskClient, active_server: Instance,
                                                   headers: dict[str, str]) -> None:
    """Well formed and out of range, as 2.200 is: Nova's 406, without the version echoed in headers."""
    routes = every_api_route(app, active_server.id)
    assert len(routes) > 20
    for method, path in routes:
        response = client.open(path, method=method, headers={**ADMIN, **headers}, json={})
        assert response.status_code == 406, (method, path, response.get_data(as_text=True)[:200])
        key, code, message = fault_of(response)
        assert (key, code) == ("computeFault", 406)
        assert message.startswith("Version ") and message.endswith(
            " is not supported by the API. Minimum is 2.1 and maximum is 2.104.")
        assert "OpenStack-API-Version" not in response.headers


def test_microversion__nine_digits_still_echoed_ten_not(client: FlaskClient) -> None:
    nine = client.get("/v2.1/flavors", headers={**ADMIN, **mv("2.999999999")})
    assert nine.status_code == 406 and nine.headers["OpenStack-API-Version"] == "compute 2.999999999"
    ten = client.get("/v2.1/flavors", headers={**ADMIN, **mv("2.9999999999")})
    assert ten.status_code == 406 and fault_of(ten)[2].startswith("Version 2.9999999999 is not supported")
    assert client.get("/v2.1/flavors", headers={**ADMIN, **mv("2.104")}).status_code == 200


@pytest.mark.parametrize("path, version", [
    ("/v2.1/servers", "2.1"), ("/v2.1/servers/detail", "2.1"), ("/v2.1/flavors", "2.1"),
    ("/v2.1/flavors/detail", "2.1"), ("/v2.1/images", "2.1"), ("/v2.1/images/detail", "2.1"),
    ("/v2.1/os-hypervisors", "2.33"), ("/v2.1/os-hypervisors/detail", "2.53"), ("/v2.1/os-migrations", "2.59"),
    ("/v2.1/servers/{id}/os-instance-actions", "2.58"),
])
def test_huge_limit__is_a_400(client: FlaskClient, active_server: Instance, path: str, version: str) -> None:
    response = client.get(path.format(id=active_server.id) + f"?limit={D}", headers={**ADMIN, **mv(version)})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    key, _, message = fault_of(response)
    assert key == "badRequest"
    assert message.startswith(f"Invalid input for query parameters limit. Value: {D}. '{D}' is too long")


def test_long_limit_that_int_takes__is_still_capped(client: FlaskClient, active_server: Instance) -> None:
    """Up to 4,300 significant digits a limit is a number, capped at [api] max_limit as before."""
    for limit in ("9" * 4300, "0" * 5000 + "1"):
        response = client.get(f"/v2.1/servers?limit={limit}", headers=OWNER)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        assert [s["id"] for s in response.get_json()["servers"]] == [active_server.id]


@pytest.mark.parametrize("path", ["/v2.1/flavors", "/v2.1/flavors/detail", "/v2.1/images/detail"])
@pytest.mark.parametrize("name", ["minRam", "minDisk"])
def test_huge_min_filter__is_novas_400(client: FlaskClient, path: str, name: str) -> None:
    response = client.get(f"{path}?{name}={D}", headers=ADMIN)
    assert response.status_code == 400
    assert fault_of(response) == ("badRequest", 400, f"Invalid {name} filter [{D}]")


@pytest.mark.parametrize("version", ["2.1", "2.52"])
def test_hypervisor_id_of_5000_digits__is_a_404(client: FlaskClient, version: str) -> None:
    ref = "9" * 5000
    response = client.get(f"/v2.1/os-hypervisors/{ref}", headers={**ADMIN, **mv(version)})
    assert response.status_code == 404
    assert fault_of(response) == ("itemNotFound", 404, f"Hypervisor with ID '{ref}' could not be found.")
    assert client.get("/v2.1/os-hypervisors/1", headers={**ADMIN, **mv(version)}).status_code == 200


def test_create_backup__a_rotation_of_4301_digits_is_a_400(client: FlaskClient, active_server: Instance,
                                                          store: Any) -> None:
    body = {"createBackup": {"name": "b", "backup_type": "daily", "rotation": D}}
    response = client.post(f"/v2.1/servers/{active_server.id}/action", json=body, headers=OWNER)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    key, _, message = fault_of(response)
    assert key == "badRequest"
    assert message.startswith(f"Invalid input for field/attribute rotation. Value: {D}.")
    assert store.get_instance(active_server.id).task_state is None


@pytest.mark.parametrize("field", ["max_count", "min_count"])
def test_create_server__a_count_of_4301_digits_is_a_400(client: FlaskClient, store: Any, field: str) -> None:
    before = len(store.list_instances())
    body = {"server": {"name": "x", "flavorRef": "1", "imageRef": IMAGE_ID, field: D}}
    response = client.post("/v2.1/servers", json=body, headers=OWNER)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    key, _, message = fault_of(response)
    assert key == "badRequest"
    assert message.startswith(f"Invalid input for field/attribute {field}. Value: {D}.")
    assert len(store.list_instances()) == before


def test_json_number_of_4301_digits__is_malformed(client: FlaskClient, active_server: Instance) -> None:
    raw = '{"createBackup": {"name": "b", "backup_type": "daily", "rotation": ' + D + "}}"
    response = client.post(f"/v2.1/servers/{active_server.id}/action", data=raw,
                           headers={**OWNER, "Content-Type": "application/json"})
    assert (response.status_code, fault_of(response)[2]) == (400, "Malformed request body")


# ---- 2. the name filter: a regular expression, matched in linear time ------------------------------
@pytest.fixture
def evil_server(make_server: Any) -> Instance:
    return make_server(EVIL_NAME)


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return [s["name"] for s in response.get_json()["servers"]]


@pytest.mark.parametrize("pattern", [
    "a{99999999999}",  # OverflowError in re
    "(" * 500 + "a" + ")" * 500,  # RecursionError in re
    "(" * 600 + "a" + ")" * 600,  # the 600 nested parentheses (longer than the pattern bound)
])
def test_name_patterns_that_crashed_re__are_not_500(client: FlaskClient, evil_server: Instance,
                                                    pattern: str) -> None:
    from urllib.parse import quote

    response = client.get(f"/v2.1/servers?name={quote(pattern)}", headers=OWNER)
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]


def test_nested_parentheses_within_the_bound__match_as_a_regex(client: FlaskClient, evil_server: Instance) -> None:
    from urllib.parse import quote

    pattern = "(" * 500 + "a" + ")" * 500
    assert names(client.get(f"/v2.1/servers?name={quote(pattern)}", headers=OWNER)) == [EVIL_NAME]


def test_catastrophic_backtracking_pattern__answers_at_once(client: FlaskClient, evil_server: Instance) -> None:
    """``(a+)+$`` against 30 a's and a '!' took Python's re ~90 s (a worker pinned); RE2 is linear."""
    started = time.monotonic()
    response = client.get("/v2.1/servers?name=(a%2B)%2B$", headers=OWNER)
    assert time.monotonic() - started < 1.0
    assert names(response) == []
    assert names(client.get("/v2.1/servers?name=(a%2B)%2B!$", headers=OWNER)) == [EVIL_NAME]


@pytest.mark.parametrize("pattern, matched", [
    ("^aaa", True), ("a!$", True), ("^b", False), ("[a]{30}", True), ("a{31}", False), (".*", True),
    ("(", False),  # invalid: matched literally, as before
    ("a(?=!)", False),  # look-ahead: RE2 refuses it, so it is matched literally
])
def test_name__keeps_novas_regex_meaning(client: FlaskClient, evil_server: Instance, pattern: str,
                                         matched: bool) -> None:
    from urllib.parse import quote

    found = names(client.get(f"/v2.1/servers?name={quote(pattern)}", headers=OWNER))
    assert found == ([EVIL_NAME] if matched else [])


def test_invalid_pattern__matches_literally(make_server: Any, client: FlaskClient) -> None:
    make_server("web(1")
    make_server("web1")
    assert names(client.get("/v2.1/servers?name=b(", headers=OWNER)) == ["web(1"]


def test_name_pattern__longer_than_the_bound_is_a_400(client: FlaskClient, evil_server: Instance) -> None:
    pattern = "a" * (query.MAX_NAME_PATTERN_LENGTH + 1)
    response = client.get(f"/v2.1/servers/detail?name={pattern}", headers=OWNER)
    assert response.status_code == 400
    assert fault_of(response)[2].startswith("Invalid input for query parameters name.")
    at_bound = "a" * query.MAX_NAME_PATTERN_LENGTH
    assert names(client.get(f"/v2.1/servers/detail?name={at_bound}", headers=OWNER)) == []


def test_name_matches__never_uses_pythons_re(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Python's re was given client text")

    for name in ("search", "match", "fullmatch", "compile"):
        monkeypatch.setattr(re, name, refuse)
    query.name_matcher.cache_clear()
    assert query.name_matches("(a+)+$", EVIL_NAME) is False
    assert query.name_matches("a!$", EVIL_NAME) is True
    assert query.name_matches("(", "x(y") is True
