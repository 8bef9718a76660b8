"""``/metrics`` names hosts and their usage: an admin token by default, ``[metrics] access = "public"`` to open it."""
from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

ADMIN = {"X-Auth-Token": "admin:admin"}
MEMBER = {"X-Auth-Token": "alice:demo"}


def fault_of(response: Any) -> tuple[str, int]:
    (key, inner), = response.get_json().items()
    return key, inner["code"]


def test_default__an_admin_token_reads_it(client: Any, active_server: Any) -> None:
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    assert 'compute_actions_host_running_vms{host="compute-kvm-1"} 1.0' in response.get_data(as_text=True)


def test_default__no_token_is_401_and_a_member_is_403(client: Any, active_server: Any) -> None:
    anonymous = client.get("/metrics")
    assert (anonymous.status_code, fault_of(anonymous)) == (401, ("unauthorized", 401))
    member = client.get("/metrics", headers=MEMBER)
    assert (member.status_code, fault_of(member)) == (403, ("forbidden", 403))
    for response in (anonymous, member):
        assert "compute-kvm" not in response.get_data(as_text=True)


def test_public__anyone_reads_it(make_app: Any, active_server: Any) -> None:
    client = make_app(metrics={"access": "public"}).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", headers=MEMBER).status_code == 200


@pytest.mark.parametrize("headers", [ADMIN, {}])
def test_content_type__is_prometheus_latest_exactly(make_app: Any, headers: dict[str, str]) -> None:
    client = make_app(metrics={"access": "public"}).test_client()
    response = client.get("/metrics", headers=headers)
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert response.headers["Content-Type"].count("charset") == 1


def test_settings__access_is_admin_unless_configured() -> None:
    from compute.settings import Settings

    assert Settings().metrics.access == "admin"
    with pytest.raises(ValueError):
        Settings(metrics={"access": "everyone"})
