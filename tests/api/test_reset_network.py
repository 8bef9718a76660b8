"""resetNetwork: the seed mode (202 and queued) and the removed mode (410), codes and checks."""
from __future__ import annotations

import pytest

from tests.api.conftest import ADMIN, OWNER, UNKNOWN_ID, fault, post_action

GONE = "This resource is no longer available.  No forwarding address is given."


# ---- resetNetwork ------------------------------------------------------------------------

def test_reset_network__seed_mode_is_202_and_queued(client, enqueuer, active_server):
    response = post_action(client, active_server.id, {"resetNetwork": None})
    assert response.status_code == 202
    assert enqueuer.sent[-1][0] == response.headers["x-openstack-request-id"]


def test_reset_network__seed_mode_checks_lookup_policy_and_host(client, build_server, active_server):
    assert post_action(client, UNKNOWN_ID, {"resetNetwork": None}).status_code == 404
    response = post_action(client, active_server.id, {"resetNetwork": None}, OWNER)
    assert fault(response)[1:] == (403, "Policy doesn't allow os_compute_api:os-admin-actions:reset_network "
                                        "to be performed.")
    assert post_action(client, build_server.id, {"resetNetwork": None}).status_code == 409


@pytest.mark.parametrize("server", ["unknown", "active"])
@pytest.mark.parametrize("headers", [ADMIN, OWNER, {"X-Auth-Token": "bob:other"}])
def test_reset_network__removed_mode_is_410_before_lookup_and_policy(make_app, active_server, server, headers):
    client = make_app(api={"reset_network_removed": True}).test_client()
    server_id = UNKNOWN_ID if server == "unknown" else active_server.id
    response = post_action(client, server_id, {"resetNetwork": {"any": "thing"}}, headers)
    assert response.status_code == 410
    assert fault(response) == ("computeFault", 410, GONE)


def test_reset_network__removed_mode_still_needs_a_token(make_app, active_server):
    client = make_app(api={"reset_network_removed": True}).test_client()
    assert post_action(client, active_server.id, {"resetNetwork": None}, {}).status_code == 401
