"""Flavors: the Nova view per microversion and the filters the clients send."""
from __future__ import annotations

import pytest

from compute.models import Flavor
from tests.api.conftest import ADMIN, OWNER, fault, mv


def flavors(client, path="/detail", version="2.1", headers=OWNER):
    response = client.get(f"/v2.1/flavors{path}", headers={**headers, **mv(version)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["flavors"]


def test_list__id_name_links(client):
    found = flavors(client, "")
    assert [f["id"] for f in found] == ["1", "2", "3", "4"]
    assert found[0] == {"id": "1", "name": "m1.tiny", "links": [
        {"rel": "self", "href": "http://localhost/v2.1/flavors/1"},
        {"rel": "bookmark", "href": "http://localhost/flavors/1"}]}


def test_detail__novas_fields(client):
    tiny = flavors(client)[0]
    assert tiny["ram"] == 512 and tiny["disk"] == 1 and tiny["vcpus"] == 1
    assert tiny["swap"] == ""
    assert tiny["OS-FLV-EXT-DATA:ephemeral"] == 0
    assert tiny["OS-FLV-DISABLED:disabled"] is False
    assert tiny["os-flavor-access:is_public"] is True
    assert tiny["rxtx_factor"] == 1.0
    assert "description" not in tiny and "extra_specs" not in tiny


def test_detail__description_from_255_extra_specs_from_261_swap_integer_from_275(client):
    assert flavors(client, version="2.55")[0]["description"] is None
    assert flavors(client, "", version="2.55")[0]["description"] is None
    assert flavors(client, version="2.61")[0]["extra_specs"] == {}
    assert flavors(client, version="2.75")[0]["swap"] == 0


@pytest.mark.parametrize("query", ["?is_public=None", "?is_public=True", "?is_public=true&bogus=1"])
def test_detail__client_filters_do_not_break_the_list(client, query):
    assert len(flavors(client, f"/detail{query}")) == 4


def test_is_public__non_public_flavors_only_for_admins_who_ask(client, store):
    store.put_flavor(Flavor(id="9", name="secret", vcpus=1, ram=128, disk=1, is_public=False))
    assert "9" not in [f["id"] for f in flavors(client, "/detail?is_public=None")]
    assert "9" not in [f["id"] for f in flavors(client, headers=ADMIN)]
    assert "9" in [f["id"] for f in flavors(client, "/detail?is_public=None", headers=ADMIN)]
    assert [f["id"] for f in flavors(client, "/detail?is_public=false", headers=ADMIN)] == ["9"]


def test_min_ram_and_min_disk(client):
    assert [f["id"] for f in flavors(client, "/detail?minRam=4096")] == ["3", "4"]
    assert [f["id"] for f in flavors(client, "/detail?minDisk=40")] == ["3", "4"]
    response = client.get("/v2.1/flavors/detail?minRam=lots", headers=OWNER)
    assert fault(response) == ("badRequest", 400, "Invalid minRam filter [lots]")


def test_limit_and_marker(client):
    response = client.get("/v2.1/flavors?limit=2", headers=OWNER).get_json()
    assert [f["id"] for f in response["flavors"]] == ["1", "2"]
    assert response["flavors_links"][0]["href"] == "http://localhost/v2.1/flavors?limit=2&marker=2"
    assert [f["id"] for f in flavors(client, "?marker=2")] == ["3", "4"]


def test_show__one_flavor_and_404(client):
    response = client.get("/v2.1/flavors/3", headers=OWNER)
    assert response.get_json()["flavor"]["name"] == "m1.medium"
    missing = client.get("/v2.1/flavors/42", headers=OWNER)
    assert fault(missing) == ("itemNotFound", 404, "Flavor 42 could not be found.")
