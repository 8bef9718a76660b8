"""os-instance-actions list and show, microversion by microversion and per policy."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest

from compute.models import ActionEvent, FlowRun
from tests.api.conftest import ADMIN, OWNER, fault, mv, post_action, set_fields

ACTION_KEYS = {"action", "instance_uuid", "message", "project_id", "request_id", "start_time", "user_id"}


def record_events(store: Any, request_id: str, events: list[ActionEvent], **action_update: Any) -> None:
    action = store.get_action(request_id)
    run = store.get_run(request_id) or FlowRun(request_id=request_id, flow="test", instance_uuid=action.instance_uuid)
    store.commit_run(run, owner=None, lease_ttl=30, due_in=None, events=events, action_update=action_update)


@pytest.fixture
def history(client, store, active_server):
    """Three actions on the server, oldest first: create, resetState, changePassword."""
    create = store.list_actions(active_server.id)[-1].request_id
    reset = post_action(client, active_server.id, {"os-resetState": {"state": "active"}})
    password = post_action(client, active_server.id, {"changePassword": {"adminPass": "pw"}}, OWNER)
    assert (reset.status_code, password.status_code) == (202, 202)
    ids = [create, reset.headers["x-openstack-request-id"], password.headers["x-openstack-request-id"]]
    for request_id, updated in zip(ids, ["2030-01-01T00:00:00.000000", "2030-01-02T00:00:00.000000",
                                         "2030-01-03T00:00:00.000000"], strict=True):
        record_events(store, request_id, [], updated_at=updated)
    return ids


def list_actions(client, server_id, version="2.1", query="", headers=ADMIN):
    return client.get(f"/v2.1/servers/{server_id}/os-instance-actions{query}", headers={**headers, **mv(version)})


def show_action(client, server_id, request_id, version="2.1", headers=ADMIN, query=""):
    return client.get(f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}{query}",
                      headers={**headers, **mv(version)})


# ---- list --------------------------------------------------------------------------------

def test_list__newest_first_with_novas_keys(client, active_server, history):
    response = list_actions(client, active_server.id, headers=OWNER)
    assert response.status_code == 200
    actions = response.get_json()["instanceActions"]
    assert [a["request_id"] for a in actions] == history[::-1]
    assert [a["action"] for a in actions] == ["changePassword", "resetState", "create"]
    assert all(set(a) == ACTION_KEYS for a in actions)
    assert actions[0]["instance_uuid"] == active_server.id
    assert (actions[1]["user_id"], actions[1]["project_id"]) == ("admin", "admin")


def test_list__deleted_server_is_404_below_221_and_listed_from_221(client, store, active_server, history):
    set_fields(store, active_server.id, deleted=True, vm_state="deleted")
    assert list_actions(client, active_server.id, "2.20").status_code == 404
    response = list_actions(client, active_server.id, "2.21")
    assert response.status_code == 200
    assert len(response.get_json()["instanceActions"]) == 3


def test_list__before_258_ignores_query_and_has_no_paging(client, active_server, history):
    response = list_actions(client, active_server.id, "2.57", "?limit=1&bogus=1&marker=nope")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"instanceActions"}
    assert len(body["instanceActions"]) == 3
    assert all("updated_at" not in a for a in body["instanceActions"])


def test_list__from_258_adds_updated_at(client, active_server, history):
    actions = list_actions(client, active_server.id, "2.58").get_json()["instanceActions"]
    assert [a["updated_at"] for a in actions] == ["2030-01-03T00:00:00.000000", "2030-01-02T00:00:00.000000",
                                                  "2030-01-01T00:00:00.000000"]


def test_list__limit_and_marker_walk_the_pages(client, active_server, history):
    first = list_actions(client, active_server.id, "2.58", "?limit=2").get_json()
    assert [a["request_id"] for a in first["instanceActions"]] == [history[2], history[1]]
    assert first["links"] == [{"rel": "next", "href": f"http://localhost/v2.1/servers/{active_server.id}"
                               f"/os-instance-actions?limit=2&marker={history[1]}"}]
    second = list_actions(client, active_server.id, "2.58", f"?limit=2&marker={history[1]}").get_json()
    assert [a["request_id"] for a in second["instanceActions"]] == [history[0]]
    assert "links" not in second


def test_list__limit_zero_is_empty(client, active_server, history):
    body = list_actions(client, active_server.id, "2.58", "?limit=0").get_json()
    assert body == {"instanceActions": []}


def test_list__limit_is_capped_by_max_limit(make_app, active_server, history):
    client = make_app(api={"max_limit": 2}).test_client()
    body = list_actions(client, active_server.id, "2.58", "?limit=50").get_json()
    assert len(body["instanceActions"]) == 2
    assert body["links"][0]["href"].endswith(f"limit=50&marker={history[1]}")
    assert len(list_actions(client, active_server.id, "2.58").get_json()["instanceActions"]) == 2


@pytest.mark.parametrize("query, message", [
    ("?marker=req-00000000-0000-4000-8000-000000000000",
     "Marker req-00000000-0000-4000-8000-000000000000 could not be found."),
    ("?limit=-1", "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"),
    ("?limit=abc", "Invalid input for query parameters limit. Value: abc. 'abc' does not match '^[0-9]*$'"),
    ("?limit=1&limit=2", "Invalid input for query parameters limit. Value: ['1', '2']. ['1', '2'] is too long"),
    ("?foo=bar", "Additional properties are not allowed ('foo' was unexpected)"),
    ("?changes-since=yesterday",
     "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'"),
    ("?changes-before=2030-01-01T00:00:00Z", "Additional properties are not allowed "
                                             "('changes-before' was unexpected)"),
])
def test_list__bad_query_from_258_is_400(client, active_server, history, query, message):
    response = list_actions(client, active_server.id, "2.58", query)
    assert fault(response) == ("badRequest", 400, message)


def test_list__query_is_validated_before_the_lookup(client):
    response = list_actions(client, "00000000-0000-4000-8000-000000000000", "2.58", "?foo=1")
    assert response.status_code == 400


def test_list__marker_of_another_server_is_400(client, active_server, make_server, history):
    other = make_server("other")
    other_action = client.get(f"/v2.1/servers/{other.id}/os-instance-actions",
                              headers=ADMIN).get_json()["instanceActions"][0]["request_id"]
    response = list_actions(client, active_server.id, "2.58", f"?marker={other_action}")
    assert response.status_code == 400


def test_list__changes_since_keeps_updated_at_at_or_after(client, active_server, history):
    body = list_actions(client, active_server.id, "2.58", "?changes-since=2030-01-02T00:00:00Z").get_json()
    assert [a["request_id"] for a in body["instanceActions"]] == [history[2], history[1]]


def test_list__changes_before_from_266(client, active_server, history):
    body = list_actions(client, active_server.id, "2.66",
                        "?changes-since=2030-01-01T12:00:00&changes-before=2030-01-02T00:00:00%2B00:00").get_json()
    assert [a["request_id"] for a in body["instanceActions"]] == [history[1]]


def test_list__changes_before_earlier_than_since_is_400(client, active_server, history):
    response = list_actions(client, active_server.id, "2.66",
                            "?changes-since=2030-01-02T00:00:00Z&changes-before=2030-01-01T00:00:00Z")
    assert fault(response) == ("badRequest", 400,
                               "The value of changes-since must be less than or equal to changes-before.")


# ---- show --------------------------------------------------------------------------------

@pytest.fixture
def with_events(store, active_server, history):
    """The create action with two events: an older success and a newer error."""
    request_id = history[0]
    record_events(store, request_id, [
        ActionEvent(key="1", event="compute__do_build_and_run_instance", start_time="2030-01-01T00:00:01.000000",
                    finish_time="2030-01-01T00:00:02.000000", result="Success", host="compute-kvm-1"),
        ActionEvent(key="2", event="compute_post_build", start_time="2030-01-01T00:00:03.000000",
                    finish_time="2030-01-01T00:00:04.000000", result="Error", traceback="Traceback ...",
                    host="compute-kvm-1", details="disk full"),
    ])
    return request_id


def events_of(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["instanceAction"].get("events")


def test_show__action_keys_and_events_newest_first_for_admin(client, active_server, with_events):
    response = show_action(client, active_server.id, with_events)
    action = response.get_json()["instanceAction"]
    assert set(action) == ACTION_KEYS | {"events"}
    assert action["request_id"] == with_events
    assert action["events"] == [
        {"event": "compute_post_build", "start_time": "2030-01-01T00:00:03.000000",
         "finish_time": "2030-01-01T00:00:04.000000", "result": "Error", "traceback": "Traceback ..."},
        {"event": "compute__do_build_and_run_instance", "start_time": "2030-01-01T00:00:01.000000",
         "finish_time": "2030-01-01T00:00:02.000000", "result": "Success", "traceback": None},
    ]


def test_show__owner_sees_no_events_below_251(client, active_server, with_events):
    assert events_of(show_action(client, active_server.id, with_events, "2.50", OWNER)) is None


def test_show__owner_sees_events_without_traceback_from_251(client, active_server, with_events):
    events = events_of(show_action(client, active_server.id, with_events, "2.51", OWNER))
    assert [set(e) for e in events] == [{"event", "start_time", "finish_time", "result"}] * 2
    admin_events = events_of(show_action(client, active_server.id, with_events, "2.51"))
    assert all("traceback" in e for e in admin_events)


def test_show__updated_at_from_258(client, active_server, with_events):
    assert "updated_at" not in show_action(client, active_server.id, with_events, "2.57").get_json()["instanceAction"]
    assert "updated_at" in show_action(client, active_server.id, with_events, "2.58").get_json()["instanceAction"]


def test_show__host_for_admin_and_host_id_for_all_from_262(client, active_server, with_events):
    expected_host_id = hashlib.sha224(("demo" + "compute-kvm-1").encode()).hexdigest()
    admin = events_of(show_action(client, active_server.id, with_events, "2.62"))
    assert admin[0]["host"] == "compute-kvm-1"
    assert admin[0]["hostId"] == expected_host_id
    owner = events_of(show_action(client, active_server.id, with_events, "2.62", OWNER))
    assert owner[0]["hostId"] == expected_host_id
    assert "host" not in owner[0] and "traceback" not in owner[0]
    below = events_of(show_action(client, active_server.id, with_events, "2.61"))
    assert "host" not in below[0] and "hostId" not in below[0]


def test_show__host_id_hashes_the_action_project_or_else_the_server_project(client, store, active_server, history):
    reset_state = history[1]
    record_events(store, reset_state, [ActionEvent(key="1", event="e", result="Success", host="compute-kvm-2")])
    events = events_of(show_action(client, active_server.id, reset_state, "2.62"))
    assert events[0]["hostId"] == hashlib.sha224(b"admin" + b"compute-kvm-2").hexdigest()
    record_events(store, reset_state, [], project_id=None)
    events = events_of(show_action(client, active_server.id, reset_state, "2.62"))
    assert events[0]["hostId"] == hashlib.sha224(b"demo" + b"compute-kvm-2").hexdigest()


def test_show__host_id_is_empty_without_a_host(client, store, active_server, history):
    record_events(store, history[1], [ActionEvent(key="1", event="e", result="Success", host=None)])
    events = events_of(show_action(client, active_server.id, history[1], "2.62"))
    assert events[0]["hostId"] == ""
    assert events[0]["host"] is None


def test_show__details_for_admin_from_284(client, active_server, with_events):
    assert events_of(show_action(client, active_server.id, with_events, "2.84"))[0]["details"] == "disk full"
    assert "details" not in events_of(show_action(client, active_server.id, with_events, "2.83"))[0]
    assert "details" not in events_of(show_action(client, active_server.id, with_events, "2.84", OWNER))[0]


def test_show__reset_state_action_has_no_events(client, active_server, history):
    assert events_of(show_action(client, active_server.id, history[1], "2.84")) == []


@pytest.mark.parametrize("request_id", ["req-00000000-0000-4000-8000-000000000000", "nope", "req-x:events"])
def test_show__unknown_request_id_is_404(client, active_server, history, request_id):
    response = show_action(client, active_server.id, request_id)
    assert fault(response) == ("itemNotFound", 404, f"Action {request_id} not found")


def test_show__action_of_another_server_is_404(client, active_server, make_server):
    other = make_server("other")
    other_action = client.get(f"/v2.1/servers/{other.id}/os-instance-actions",
                              headers=ADMIN).get_json()["instanceActions"][0]["request_id"]
    assert show_action(client, active_server.id, other_action).status_code == 404


def test_show__unknown_query_is_400_only_from_2102(client, active_server, history):
    assert show_action(client, active_server.id, history[0], "2.101", query="?x=1").status_code == 200
    response = show_action(client, active_server.id, history[0], "2.102", query="?x=1")
    assert fault(response) == ("badRequest", 400, "Additional properties are not allowed ('x' was unexpected)")


def test_show__deleted_server_from_221(client, store, active_server, history):
    set_fields(store, active_server.id, deleted=True, vm_state="deleted")
    assert show_action(client, active_server.id, history[0], "2.20").status_code == 404
    assert show_action(client, active_server.id, history[0], "2.21").status_code == 200
