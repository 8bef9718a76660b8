"""Idempotency-Key on POST /servers and POST /servers/{id}/action: a retry gets the first answer, nothing twice."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from api.idempotency import request_fingerprint, scope_digest
from compute import errors
from compute.models import IdempotencyRecord
from tests.api.conftest import ADMIN, IMAGE_ID, OTHER, OWNER, fault, mv
from tests.support.concurrency import at_once

CREATE = {"server": {"name": "vm", "imageRef": IMAGE_ID, "flavorRef": "1"}}
BACKUP = {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 2}}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def post_create(client: Any, headers: dict[str, str], body: Any = None) -> Any:
    return client.post("/v2.1/servers", json=CREATE if body is None else body, headers=headers)


def post_action(client: Any, server_id: str, body: Any, headers: dict[str, str]) -> Any:
    return client.post(f"/v2.1/servers/{server_id}/action", json=body, headers=headers)


def answer(response: Any) -> tuple[int, bytes, str | None, str | None]:
    return (response.status_code, response.data, response.headers.get("x-openstack-request-id"),
            response.headers.get("Location"))


def test_create__a_retry_gets_the_first_answer_and_creates_nothing(client, store):
    first = post_create(client, {**OWNER, **key("k-1")})
    again = post_create(client, {**OWNER, **key("k-1")})
    assert first.status_code == 202
    assert answer(again) == answer(first)  # same server id, adminPass, request id, Location
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert len(store.list_instances()) == 1
    assert post_create(client, {**OWNER, **key("k-2")}).status_code == 202
    assert post_create(client, OWNER).status_code == 202  # no header: nothing changes
    assert len(store.list_instances()) == 3


def test_action__one_instance_action_for_any_number_of_retries(client, store, active_server):
    headers = {**ADMIN, **key("reset-1")}
    answers = [answer(post_action(client, active_server.id, {"os-resetState": {"state": "error"}}, headers))
               for _ in range(3)]
    assert answers[0][0] == 202 and answers.count(answers[0]) == 3
    actions = [a.action for a in store.list_actions(active_server.id)]
    assert actions.count("resetState") == 1
    assert store.get_action(answers[0][2]) is not None


@pytest.mark.parametrize("version", ["2.1", "2.45"])
def test_action__create_backup_replays_its_location_or_image_id(client, store, active_server, version):
    headers = {**OWNER, **key("backup-1"), **mv(version)}
    first = post_action(client, active_server.id, BACKUP, headers)
    again = post_action(client, active_server.id, BACKUP, headers)
    assert first.status_code == 202 and answer(again) == answer(first)
    assert again.headers["OpenStack-API-Version"] == f"compute {version}"
    assert len([i for i in store.list_images() if i.properties.get("image_type") == "backup"]) == 1


@pytest.mark.parametrize("change", ["body", "path", "microversion"])
def test_the_same_key_for_another_request_is_a_422(client, store, make_server, active_server, change):
    other_server = make_server("other")
    headers = {**ADMIN, **key("reused")}
    assert post_action(client, active_server.id, {"os-resetState": {"state": "error"}}, headers).status_code == 202
    body, server_id = {"os-resetState": {"state": "error"}}, active_server.id
    if change == "body":
        body = {"os-resetState": {"state": "active"}}
    elif change == "path":
        server_id = other_server.id
    else:
        headers = {**headers, **mv("2.50")}
    response = post_action(client, server_id, body, headers)
    assert fault(response) == ("computeFault", 422, ("Idempotency-Key reused was already used for a different "
                                                    "request (method, path, microversion or body)."))
    assert store.get_instance(active_server.id).vm_state == "error"
    assert [a.action for a in store.list_actions(other_server.id)] == ["create"]


def test_keys_are_scoped_by_project_and_user(client, store):
    assert post_create(client, {**OWNER, **key("same")}).status_code == 202
    assert post_create(client, {**OTHER, **key("same")}).status_code == 202
    assert post_create(client, {"X-Auth-Token": "carol:demo", **key("same")}).status_code == 202
    assert len(store.list_instances()) == 3


def test_a_4xx_answer_is_kept(client, store, active_server):
    headers = {**OWNER, **key("confirm")}
    first = post_action(client, active_server.id, {"confirmResize": None}, headers)
    assert first.status_code == 409
    again = post_action(client, active_server.id, {"confirmResize": None}, headers)
    assert answer(again) == answer(first) and again.headers["Idempotent-Replayed"] == "true"


def test_an_over_quota_403_is_kept(client, store):
    client.put("/v2.1/os-quota-sets/demo", json={"quota_set": {"instances": 0}}, headers=ADMIN)
    first = post_create(client, {**OWNER, **key("q")})
    assert first.status_code == 403
    client.put("/v2.1/os-quota-sets/demo", json={"quota_set": {"instances": 5}}, headers=ADMIN)
    assert answer(post_create(client, {**OWNER, **key("q")})) == answer(first)
    assert store.list_instances() == []


def test_a_503_is_not_kept_so_the_retry_runs(client, store, enqueuer):
    enqueuer.fail_with = errors.QueueUnavailable("broker down")
    assert post_create(client, {**OWNER, **key("retry-me")}).status_code == 503
    enqueuer.fail_with = None
    response = post_create(client, {**OWNER, **key("retry-me")})
    assert response.status_code == 202 and "Idempotent-Replayed" not in response.headers
    assert len(store.list_instances()) == 1


def test_the_answer_is_kept_for_the_window(make_app, store):
    client = make_app(idempotency={"window_seconds": 120}).test_client()
    post_create(client, {**OWNER, **key("ttl")})
    assert 110 < store.idempotency_key_ttl(scope_digest("demo", "alice", "ttl")) <= 120


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_an_invalid_key_is_a_400(client, store, value):
    response = post_create(client, {**OWNER, "Idempotency-Key": value})
    assert fault(response) == ("badRequest", 400, ("Invalid Idempotency-Key header: it must be 1 to 255 printable "
                                                  "ASCII characters."))
    assert store.list_instances() == []


def test_a_structured_field_string_is_the_same_key(client, store):
    first = post_create(client, {**OWNER, **key('"abc"')})
    assert answer(post_create(client, {**OWNER, **key("abc")})) == answer(first)


def test_a_malformed_body_is_a_400_before_anything_is_reserved(client, store):
    response = client.post("/v2.1/servers", data=b"{nope", headers={**OWNER, **key("bad"),
                                                                     "Content-Type": "application/json"})
    assert fault(response)[1] == 400
    assert store.scan_keys("idempotency:*") == []


# ---- a duplicate while the first is in flight --------------------------------------------------------
def reserve_as_in_flight(app: Any, store: Any, client_key: str) -> IdempotencyRecord:
    with app.test_request_context("/v2.1/servers", method="POST", json=CREATE):
        record = IdempotencyRecord(fingerprint=request_fingerprint(), request_id="req-first")
    assert store.reserve_idempotency_key(scope_digest("demo", "alice", client_key), record, 30) is None
    return record


def test_in_flight__a_duplicate_waits_then_gets_409(make_app, store):
    app = make_app(idempotency={"wait_seconds": 0.2})
    reserve_as_in_flight(app, store, "slow")
    started = time.monotonic()
    response = post_create(app.test_client(), {**OWNER, **key("slow")})
    assert fault(response) == ("conflictingRequest", 409,
                               "A request with Idempotency-Key slow is still in progress; retry later.")
    assert response.headers["Retry-After"] == "1"
    assert 0.2 <= time.monotonic() - started < 5
    assert store.list_instances() == []


def test_in_flight__a_duplicate_gets_the_answer_when_it_comes(make_app, store):
    app = make_app(idempotency={"wait_seconds": 5})
    record = reserve_as_in_flight(app, store, "soon")
    digest = scope_digest("demo", "alice", "soon")

    def finish() -> None:
        time.sleep(0.2)
        done = record.model_copy(update={"state": "done", "status": 202, "body": '{"server": {"id": "x"}}',
                                         "headers": {"Content-Type": "application/json"}})
        store.finish_idempotency_key(digest, done, 60)

    threading.Thread(target=finish).start()
    response = post_create(app.test_client(), {**OWNER, **key("soon")})
    assert (response.status_code, response.get_json()) == (202, {"server": {"id": "x"}})
    assert response.headers["x-openstack-request-id"] == "req-first"


def test_in_flight__another_body_is_a_422_at_once(make_app, store):
    app = make_app(idempotency={"wait_seconds": 5})
    reserve_as_in_flight(app, store, "busy")
    other = {"server": {**CREATE["server"], "name": "different"}}
    response = post_create(app.test_client(), {**OWNER, **key("busy")}, other)
    assert fault(response)[1] == 422


def test_in_flight__a_reservation_whose_request_died_expires(make_app, store):
    app = make_app(idempotency={"wait_seconds": 2})
    with app.test_request_context("/v2.1/servers", method="POST", json=CREATE):
        record = IdempotencyRecord(fingerprint=request_fingerprint(), request_id="req-dead")
    store.reserve_idempotency_key(scope_digest("demo", "alice", "dead"), record, 0.2)
    response = post_create(app.test_client(), {**OWNER, **key("dead")})
    assert response.status_code == 202 and response.headers["x-openstack-request-id"] != "req-dead"
    assert len(store.list_instances()) == 1


def test_threads__one_server_and_identical_answers(app, store):
    threads = 16
    answers = at_once(threads, lambda _: answer(post_create(app.test_client(), {**OWNER, **key("race")})))
    assert answers.count(answers[0]) == threads and answers[0][0] == 202
    assert len(store.list_instances()) == 1
