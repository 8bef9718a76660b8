"""injectNetworkInfo: codes, bodies and effects."""
from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN, OWNER, fault, post_action, set_fields

# ---- injectNetworkInfo -------------------------------------------------------------------

@pytest.mark.parametrize("value", [None, {}, {"anything": [1, 2]}, "x", 0])
def test_inject_network_info__any_value_is_202_and_queued(client, enqueuer, active_server, value):
    response = post_action(client, active_server.id, {"injectNetworkInfo": value})
    assert response.status_code == 202
    assert response.get_data() == b""
    assert enqueuer.sent[-1][0] == response.headers["x-openstack-request-id"]


def test_inject_network_info__server_without_host_is_409(client, build_server):
    response = post_action(client, build_server.id, {"injectNetworkInfo": None})
    assert response.status_code == 409
    key, code, message = fault(response)
    assert (key, code) == ("conflictingRequest", 409)
    assert build_server.id in message


def test_inject_network_info__owner_is_403(client, active_server):
    response = post_action(client, active_server.id, {"injectNetworkInfo": None}, OWNER)
    assert fault(response) == ("forbidden", 403, "Policy doesn't allow "
                               "os_compute_api:os-admin-actions:inject_network_info to be performed.")


def test_inject_network_info__locked_server_is_409_for_a_non_admin_allowed_by_policy(
        make_app, store, active_server, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"os_compute_api:os-admin-actions:inject_network_info": "rule:admin_or_owner"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    set_fields(store, active_server.id, locked=True)
    response = post_action(client, active_server.id, {"injectNetworkInfo": None}, OWNER)
    assert fault(response) == ("conflictingRequest", 409, f"Instance {active_server.id} is locked")
    assert post_action(client, active_server.id, {"injectNetworkInfo": None}, ADMIN).status_code == 202
