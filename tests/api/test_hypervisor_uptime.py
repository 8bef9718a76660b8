"""os-hypervisors: the uptime route (below 2.88), ``uptime`` in the 2.88 view, and every field of the
view per microversion as Nova's response schemas list them."""
from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from compute.models import Host
from compute.services import uptime_text
from tests.api.conftest import ADMIN, HOST, OWNER, fault, mv

KVM1 = Host(name=HOST).uuid
# python-openstackclient's parse of the uptime text (hypervisor show)
OSC_UPTIME = re.compile(r"\s*(.+)\sup\s+(.+),\s+(.+)\susers?,\s+load average:\s(.+)")

SUMMARY = {"id", "hypervisor_hostname", "state", "status"}
DETAIL = SUMMARY | {"hypervisor_type", "hypervisor_version", "host_ip", "service"}
STATS = {"vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "free_ram_mb",
         "free_disk_gb", "current_workload", "running_vms", "disk_available_least", "cpu_info"}


def get(client: FlaskClient, path: str, version: str = "2.1", headers: dict[str, str] = ADMIN) -> Any:
    return client.get(f"/v2.1/os-hypervisors{path}", headers={**headers, **mv(version)})


# ---- GET /os-hypervisors/{id}/uptime ---------------------------------------------------------------------
def test_uptime__summary_view_plus_the_hosts_uptime(client: FlaskClient) -> None:
    response = get(client, "/1/uptime")
    assert response.status_code == 200
    body = response.get_json()["hypervisor"]
    assert set(body) == SUMMARY | {"uptime"}
    assert (body["id"], body["hypervisor_hostname"], body["state"], body["status"]) == (1, HOST, "up", "enabled")
    match = OSC_UPTIME.match(body["uptime"])
    assert match and match.group(2) == "0 min" and match.group(3) == "0"
    at_253 = get(client, f"/{KVM1}/uptime", "2.53").get_json()["hypervisor"]
    assert at_253["id"] == KVM1 and OSC_UPTIME.match(at_253["uptime"])


def test_uptime__counts_on_the_fleet_clock(client: FlaskClient, fleet: Any) -> None:
    fleet.clock.advance(3 * 86400 + 2 * 3600 + 33 * 60 + 5)
    match = OSC_UPTIME.match(get(client, "/1/uptime").get_json()["hypervisor"]["uptime"])
    assert match and match.group(2) == "3 days,  2:33"


def test_uptime__gone_from_288(client: FlaskClient) -> None:
    assert fault(get(client, f"/{KVM1}/uptime", "2.88")) == ("itemNotFound", 404, "The resource could not be found.")
    assert get(client, f"/{KVM1}/uptime", "2.87").status_code == 200


@pytest.mark.parametrize("ref, version, expected", [
    ("99", "2.1", ("itemNotFound", 404, "Hypervisor with ID '99' could not be found.")),
    ("x", "2.1", ("itemNotFound", 404, "Hypervisor with ID 'x' could not be found.")),
    ("1", "2.53", ("badRequest", 400, "Invalid uuid 1")),
])
def test_uptime__bad_ids(client: FlaskClient, ref: str, version: str, expected: tuple) -> None:
    assert fault(get(client, f"/{ref}/uptime", version)) == expected


def test_uptime__policy(client: FlaskClient) -> None:
    assert fault(get(client, "/1/uptime", headers=OWNER)) == (
        "forbidden", 403, "Policy doesn't allow os_compute_api:os-hypervisors:uptime to be performed.")


def test_uptime__a_down_or_forced_down_host_is_400(client: FlaskClient, fleet: Any, store: Any) -> None:
    fleet.set_host_state(HOST, up=False)
    assert fault(get(client, "/1/uptime")) == ("badRequest", 400,
                                                f"Compute service of {HOST} is unavailable at this time.")
    store.update_host("compute-kvm-2", forced_down=True)
    assert fault(get(client, "/2/uptime"))[:2] == ("badRequest", 400)


def test_uptime_text__as_procps_prints_it() -> None:
    assert uptime_text(1_000_000.0, 1_000_000.0 - 86400 - 300, 0.5).endswith(
        " up 1 day, 5 min,  0 users,  load average: 0.50, 0.50, 0.50")
    assert " up  2:33," in uptime_text(100_000.0, 100_000.0 - 2 * 3600 - 33 * 60)


# ---- the view per microversion ---------------------------------------------------------------------------
def test_288__show_and_detail_carry_uptime_null_when_down(client: FlaskClient, fleet: Any) -> None:
    shown = get(client, f"/{KVM1}", "2.88").get_json()["hypervisor"]
    assert set(shown) == DETAIL | {"uptime"}
    assert OSC_UPTIME.match(shown["uptime"])
    fleet.set_host_state(HOST, up=False)
    assert get(client, f"/{KVM1}", "2.88").get_json()["hypervisor"]["uptime"] is None
    listed = {h["hypervisor_hostname"]: h for h in get(client, "/detail", "2.88").get_json()["hypervisors"]}
    assert listed[HOST]["uptime"] is None and OSC_UPTIME.match(listed["compute-kvm-2"]["uptime"])
    assert "uptime" not in get(client, f"/{KVM1}", "2.87").get_json()["hypervisor"]


@pytest.mark.parametrize("version, ref, fields, id_type, cpu_info_type", [
    ("2.1", "1", DETAIL | STATS, int, str),
    ("2.27", "1", DETAIL | STATS, int, str),
    ("2.28", "1", DETAIL | STATS, int, dict),
    ("2.52", "1", DETAIL | STATS, int, dict),
    ("2.53", KVM1, DETAIL | STATS, str, dict),
    ("2.87", KVM1, DETAIL | STATS, str, dict),
    ("2.88", KVM1, DETAIL | {"uptime"}, str, None),
])
def test_show__fields_per_microversion(client: FlaskClient, version: str, ref: str, fields: set[str],
                                       id_type: type, cpu_info_type: type | None) -> None:
    shown = get(client, f"/{ref}", version).get_json()["hypervisor"]
    assert set(shown) == fields
    assert isinstance(shown["id"], id_type) and isinstance(shown["service"]["id"], id_type)
    assert set(shown["service"]) == {"id", "host", "disabled_reason"}
    if cpu_info_type is not None:
        assert isinstance(shown["cpu_info"], cpu_info_type)
    assert isinstance(shown["hypervisor_version"], int)


def test_list__summary_fields_at_every_version_and_servers_only_when_asked(client: FlaskClient) -> None:
    for version in ("2.1", "2.33", "2.53", "2.88"):
        for item in get(client, "", version).get_json()["hypervisors"]:
            assert set(item) == SUMMARY, version
    for item in get(client, "?with_servers=false", "2.75").get_json()["hypervisors"]:
        assert "servers" not in item


def test_detail__policy_is_list_detail(client: FlaskClient) -> None:
    assert fault(get(client, "/detail", headers=OWNER)) == (
        "forbidden", 403, "Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed.")


def test_paging__unknown_marker_is_novas_400(client: FlaskClient) -> None:
    assert fault(get(client, "?marker=77", "2.33")) == ("badRequest", 400, "marker [77] not found")
    assert fault(get(client, f"/detail?marker={KVM1[:-1]}0", "2.53"))[2].startswith("marker [")


def test_hostname_pattern__is_an_fqdn(client: FlaskClient) -> None:
    assert fault(get(client, "?hypervisor_hostname_pattern=kvm%25", "2.53"))[:2] == ("badRequest", 400)
    assert len(get(client, "?hypervisor_hostname_pattern=kvm-", "2.53").get_json()["hypervisors"]) == 5
