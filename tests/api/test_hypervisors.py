"""os-hypervisors: ids per microversion, usage from the store's claims, fields per microversion."""
from __future__ import annotations

import json

import pytest

from compute.models import Host
from tests.api.conftest import ADMIN, HOST, fault, mv

KVM1_UUID = Host(name=HOST).uuid


def get(client, path, version="2.1"):
    return client.get(f"/v2.1/os-hypervisors{path}", headers={**ADMIN, **mv(version)})


def by_name(hypervisors):
    return {h["hypervisor_hostname"]: h for h in hypervisors}


def test_list__one_per_host_with_integer_ids_below_253(client):
    hypervisors = get(client, "").get_json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in hypervisors] == [  # in the order of the services' ids
        "compute-kvm-1", "compute-kvm-2", "compute-kvm-3", "compute-xen-1", "compute-xen-2", "compute-kvm-4",
        "compute-kvm-5"]
    assert [h["id"] for h in hypervisors] == [1, 2, 3, 4, 5, 6, 7]
    assert hypervisors[0] == {"id": 1, "hypervisor_hostname": HOST, "state": "up", "status": "enabled"}


def test_list__uuid_ids_from_253(client):
    hypervisors = get(client, "", "2.53").get_json()["hypervisors"]
    assert by_name(hypervisors)[HOST]["id"] == KVM1_UUID


def test_detail__usage_reflects_claims(client, store, active_server):
    host = by_name(get(client, "/detail").get_json()["hypervisors"])[HOST]
    assert (host["vcpus"], host["vcpus_used"]) == (16, 1)
    assert (host["memory_mb"], host["memory_mb_used"], host["free_ram_mb"]) == (65536, 512, 65024)
    assert (host["local_gb"], host["local_gb_used"], host["free_disk_gb"]) == (1000, 1, 999)
    assert host["running_vms"] == 1
    assert (host["hypervisor_type"], host["hypervisor_version"], host["host_ip"]) == ("QEMU", 8002000, "192.0.2.11")
    assert host["service"] == {"host": HOST, "id": 1, "disabled_reason": None}
    assert json.loads(host["cpu_info"])["model"] == "Haswell"
    store.release_claim(HOST, active_server.id)
    host = by_name(get(client, "/detail").get_json()["hypervisors"])[HOST]
    assert (host["vcpus_used"], host["memory_mb_used"], host["running_vms"]) == (0, 0, 0)


def test_detail__cpu_info_is_an_object_from_228(client):
    host = by_name(get(client, "/detail", "2.28").get_json()["hypervisors"])[HOST]
    assert host["cpu_info"]["model"] == "Haswell"


def test_detail__usage_fields_dropped_from_288(client):
    host = by_name(get(client, "/detail", "2.88").get_json()["hypervisors"])[HOST]
    for removed in ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used",
                    "free_ram_mb", "free_disk_gb", "running_vms", "current_workload", "disk_available_least",
                    "cpu_info"):
        assert removed not in host
    assert " up " in host["uptime"] and "load average" in host["uptime"]
    assert host["service"]["id"] == Host(name=HOST).service_uuid


def test_detail__state_and_status_follow_the_fleet(client, fleet):
    fleet.set_host_state(HOST, up=False, enabled=False, disabled_reason="maintenance")
    host = by_name(get(client, "/detail").get_json()["hypervisors"])[HOST]
    assert (host["state"], host["status"], host["service"]["disabled_reason"]) == ("down", "disabled", "maintenance")


def test_show__by_service_id_below_253_and_uuid_from_253(client):
    assert get(client, "/1").get_json()["hypervisor"]["hypervisor_hostname"] == HOST
    assert get(client, f"/{KVM1_UUID}", "2.53").get_json()["hypervisor"]["hypervisor_hostname"] == HOST


@pytest.mark.parametrize("ref, version, code, message", [
    ("99", "2.1", 404, "Hypervisor with ID '99' could not be found."),
    ("abc", "2.1", 404, "Hypervisor with ID 'abc' could not be found."),
    (KVM1_UUID, "2.52", 404, f"Hypervisor with ID '{KVM1_UUID}' could not be found."),
    ("1", "2.53", 400, "Invalid uuid 1"),
    ("00000000-0000-4000-8000-000000000000", "2.53", 404,
     "Hypervisor with ID '00000000-0000-4000-8000-000000000000' could not be found."),
])
def test_show__bad_ids(client, ref, version, code, message):
    response = get(client, f"/{ref}", version)
    assert response.status_code == code
    assert fault(response)[2] == message


def test_with_servers_from_253(client, active_server):
    hypervisors = by_name(get(client, "?with_servers=true", "2.53").get_json()["hypervisors"])
    assert hypervisors[HOST]["servers"] == [{"name": "active-vm", "uuid": active_server.id}]
    assert "servers" not in hypervisors["compute-kvm-2"]
    assert by_name(get(client, "?with_servers=1", "2.75").get_json()["hypervisors"])["compute-kvm-2"]["servers"] == []
    shown = get(client, f"/{KVM1_UUID}?with_servers=true", "2.53").get_json()["hypervisor"]
    assert shown["servers"] == [{"name": "active-vm", "uuid": active_server.id}]


def test_hostname_pattern_from_253(client):
    found = get(client, "?hypervisor_hostname_pattern=xen", "2.53").get_json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == ["compute-xen-1", "compute-xen-2"]
    response = get(client, "?hypervisor_hostname_pattern=arm", "2.53")
    assert fault(response) == ("itemNotFound", 404, "No hypervisor matching 'arm' could be found.")


def test_query_is_strict_from_253(client):
    assert get(client, "?bogus=1", "2.52").status_code == 200
    assert fault(get(client, "?bogus=1", "2.53"))[:2] == ("badRequest", 400)


def test_paging_from_233(client):
    body = get(client, "/detail?limit=2", "2.33").get_json()
    assert [h["id"] for h in body["hypervisors"]] == [1, 2]
    assert body["hypervisors_links"][0]["href"] == "http://localhost/v2.1/os-hypervisors/detail?limit=2&marker=2"
    after = get(client, "?limit=2&marker=2", "2.33").get_json()["hypervisors"]
    assert [h["id"] for h in after] == [3, 4]
    assert get(client, "?marker=77", "2.33").status_code == 400
    assert len(get(client, "?limit=2", "2.32").get_json()["hypervisors"]) == 7


def test_statistics_and_search_below_their_removal(client, active_server):
    stats = get(client, "/statistics").get_json()["hypervisor_statistics"]
    assert stats["count"] == 7
    assert stats["vcpus_used"] == 1 and stats["running_vms"] == 1
    search = get(client, "/kvm/search").get_json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in search] == ["compute-kvm-1", "compute-kvm-2", "compute-kvm-3",
                                                          "compute-kvm-4", "compute-kvm-5"]
    servers = by_name(get(client, "/kvm-1/servers").get_json()["hypervisors"])
    assert servers[HOST]["servers"] == [{"name": "active-vm", "uuid": active_server.id}]
    assert get(client, "/kvm/search", "2.53").status_code == 404


def test_statistics__sum_the_enabled_hosts_up_or_down_as_nova(client, fleet, store, active_server):
    """Nova's compute_node_statistics joins the enabled nova-compute services only; a down one counts."""
    def stats():
        return get(client, "/statistics").get_json()["hypervisor_statistics"]

    before = stats()
    kvm2 = store.get_host("compute-kvm-2")
    fleet.set_host_state("compute-kvm-2", enabled=False, disabled_reason="maintenance")
    fleet.set_host_state("compute-kvm-3", up=False)
    after = stats()
    assert after["count"] == before["count"] - 1
    assert after["vcpus"] == before["vcpus"] - kvm2.vcpus
    assert after["memory_mb"] == before["memory_mb"] - kvm2.memory_mb
    assert after["free_ram_mb"] == after["memory_mb"] - after["memory_mb_used"]
    assert after["free_disk_gb"] == after["disk_available_least"] == after["local_gb"] - after["local_gb_used"]
    fleet.set_host_state(HOST, enabled=False)  # the active server's host: its usage leaves with it
    assert stats()["running_vms"] == 0 and stats()["vcpus_used"] == 0
    fleet.set_host_state(HOST, enabled=True)
    assert stats()["running_vms"] == 1


def test_hostname_pattern__short_and_long_patterns_match_substrings(client):
    def names(pattern, version="2.53"):
        response = get(client, f"?hypervisor_hostname_pattern={pattern}", version)
        return response.status_code, [h["hypervisor_hostname"] for h in response.get_json().get("hypervisors", [])]

    assert names("kvm-") == (200, [f"compute-kvm-{i}" for i in range(1, 6)])
    assert names("m-3") == (200, ["compute-kvm-3"])
    assert names("3") == (200, ["compute-kvm-3"])
    assert names("kvm-9")[0] == 404
    assert [h["hypervisor_hostname"] for h in get(client, "/e-kvm-2/search").get_json()["hypervisors"]] == \
        ["compute-kvm-2"]
