"""Idempotency-Key under races: many threads, several gunicorn processes, one key and body: one action,
the same answer for everyone."""
from __future__ import annotations

from typing import Any

import pytest

from tests.integration import quota_fixtures
from tests.integration.conftest import put_active_instance
from tests.integration.quota_fixtures import ApiProcess, at_once
from tests.support.contexts import IMAGE_ID

pytestmark = pytest.mark.redis
api = quota_fixtures.api  # the fixture

THREADS = 50


def same_answers(answers: list[Any]) -> None:
    first = answers[0]
    for a in answers:
        assert (a.status, a.body, a.request_id, a.headers.get("location")) == (
            first.status, first.body, first.request_id, first.headers.get("location"))
    assert sum("idempotent-replayed" not in a.headers for a in answers) == 1


def test_concurrent_creates_with_one_key_make_one_server(api: ApiProcess, runtime: Any) -> None:
    body = {"server": {"name": "once", "imageRef": IMAGE_ID, "flavorRef": "1", "networks": "none"}}
    answers = at_once(THREADS, lambda i: api.call("POST", "/servers", body, headers={"Idempotency-Key": "boot-1"}))
    assert answers[0].status == 202
    same_answers(answers)
    servers = [i for i in runtime.store.list_instances() if i.project_id == "demo"]
    assert [s.id for s in servers] == [answers[0].json()["server"]["id"]]
    assert [a.request_id for a in runtime.store.list_actions(servers[0].id)] == [answers[0].request_id]


def test_concurrent_actions_with_one_key_make_one_instance_action(api: ApiProcess, runtime: Any) -> None:
    server = put_active_instance(runtime.store)
    body = {"os-resetState": {"state": "error"}}
    answers = at_once(THREADS, lambda i: api.call("POST", f"/servers/{server.id}/action", body, token="admin:admin",
                                                  headers={"Idempotency-Key": "reset-1"}))
    assert answers[0].status == 202
    same_answers(answers)
    actions = runtime.store.list_actions(server.id)
    assert [(a.action, a.request_id) for a in actions] == [("resetState", answers[0].request_id)]


def test_concurrent_backups_with_one_key_make_one_backup(api: ApiProcess, runtime: Any) -> None:
    server = put_active_instance(runtime.store)
    runtime.store.update_instance(server.id, lambda i: setattr(i, "launched_at", "2026-01-01T00:00:00.000000"))
    body = {"createBackup": {"name": "nightly", "backup_type": "daily", "rotation": 3}}
    answers = at_once(THREADS, lambda i: api.call("POST", f"/servers/{server.id}/action", body, token="demo:demo",
                                                  headers={"Idempotency-Key": "backup-1",
                                                           "OpenStack-API-Version": "compute 2.45"}))
    assert answers[0].status == 202
    same_answers(answers)
    backups = [i for i in runtime.store.list_images() if i.properties.get("instance_uuid") == server.id]
    assert [b.id for b in backups] == [answers[0].json()["image_id"]]
    assert [a.action for a in runtime.store.list_actions(server.id)] == ["createBackup"]


def test_the_same_key_with_other_bodies_at_once_runs_exactly_one(api: ApiProcess, runtime: Any) -> None:
    answers = at_once(20, lambda i: api.call(
        "POST", "/servers", {"server": {"name": f"vm-{i}", "imageRef": IMAGE_ID, "flavorRef": "1"}},
        headers={"Idempotency-Key": "contested"}))
    assert sorted(a.status for a in answers).count(202) == 1
    assert {a.status for a in answers} == {202, 422}
    assert len([i for i in runtime.store.list_instances() if i.project_id == "demo"]) == 1
