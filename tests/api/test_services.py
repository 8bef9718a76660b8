"""os-services: one nova-compute per fleet host."""
from __future__ import annotations

from compute.models import Host
from tests.api.conftest import ADMIN, HOST, fault, mv


def services(client, query="", version="2.1"):
    response = client.get(f"/v2.1/os-services{query}", headers={**ADMIN, **mv(version)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["services"]


def test_list__one_compute_service_per_host(client):
    found = services(client)
    assert len(found) == 7
    first = found[0]
    assert set(first) == {"id", "binary", "disabled_reason", "host", "state", "status", "updated_at", "zone"}
    assert (first["id"], first["binary"], first["host"], first["zone"]) == (1, "nova-compute", HOST, "nova")
    assert (first["state"], first["status"], first["disabled_reason"]) == ("up", "enabled", None)


def test_list__forced_down_from_211_and_uuid_ids_from_253(client):
    assert services(client, version="2.11")[0]["forced_down"] is False
    assert services(client, version="2.53")[0]["id"] == Host(name=HOST).service_uuid


def test_list__filters_by_host_and_binary(client):
    assert [s["host"] for s in services(client, f"?host={HOST}")] == [HOST]
    assert services(client, "?binary=nova-scheduler") == []
    assert len(services(client, "?binary=nova-compute")) == 7


def test_list__reflects_disabled_and_down_hosts(client, fleet):
    fleet.set_host_state("compute-xen-2", up=False, enabled=False, disabled_reason="broken fan")
    xen2 = services(client, "?host=compute-xen-2")[0]
    assert (xen2["state"], xen2["status"], xen2["disabled_reason"]) == ("down", "disabled", "broken fan")


def test_list__unknown_query_is_400_from_275(client):
    assert len(services(client, "?bogus=1", "2.74")) == 7
    response = client.get("/v2.1/os-services?bogus=1", headers={**ADMIN, **mv("2.75")})
    assert fault(response)[:2] == ("badRequest", 400)
