"""The operator surface through the real clients: os-services writes, aggregates and zones, the
scheduler keeping zones and avoiding disabled hosts, hypervisor uptime.

These tests change the fleet (disable hosts, zone them, delete a service), so they run on a
`compute-actions dev` of their own, never the session's shared one.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import openstack
import pytest
from keystoneauth1 import session, token_endpoint
from novaclient import client as nova_client

from tests.e2e.conftest import DevServer, running_dev_server

pytestmark = pytest.mark.e2e

AZ1 = ("compute-kvm-1", "compute-kvm-2")
OSC_UPTIME = re.compile(r"\s*(.+)\sup\s+(.+),\s+(.+)\susers?,\s+load average:\s(.+)")


@pytest.fixture(scope="module")
def operator_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """Its own dev server; its clouds.yaml also points the SDK's block-storage proxy at the
    stand-in v3 document, without which ``openstack availability zone list`` fails."""
    workdir = tmp_path_factory.mktemp("operator-dev")
    with running_dev_server(workdir) as server:
        text = server.clouds_yaml.read_text()
        if "block_storage_endpoint_override" not in text:
            base = server.endpoint.rsplit("/v2.1", 1)[0]
            text = text.replace("    identity_api_version:",
                                f"    block_storage_endpoint_override: {base}/volume/v3\n    identity_api_version:")
        clouds = workdir / "operator-clouds.yaml"
        clouds.write_text(text)
        yield replace(server, clouds_yaml=clouds)


def sdk(dev: DevServer) -> openstack.connection.Connection:
    return openstack.connect(auth_type="admin_token", auth={"endpoint": dev.endpoint, "token": "admin:admin"})


def nova(dev: DevServer, version: str):  # noqa: ANN201
    return nova_client.Client(version, session=session.Session(auth=token_endpoint.Token(dev.endpoint,
                                                                                         "admin:admin")))


def services(dev: DevServer, *extra: str) -> dict[str, dict[str, Any]]:
    return {s["Host"]: s for s in dev.osc(*extra, "compute", "service", "list", "--long", "-f", "json")}


def host_of(dev: DevServer, server_id: str) -> str:
    return dev.osc("server", "show", server_id, "-f", "json")["OS-EXT-SRV-ATTR:host"]


# ---- os-services ---------------------------------------------------------------------------------------
def test_openstack_cli__service_set_disable_enable_down_up(operator_dev: DevServer) -> None:
    dev = operator_dev
    dev.osc("compute", "service", "set", "--disable", "--disable-reason", "maintenance", "compute-kvm-1",
        "nova-compute")
    kvm1 = services(dev)["compute-kvm-1"]
    assert (kvm1["Status"], kvm1["Disabled Reason"], kvm1["State"]) == ("disabled", "maintenance", "up")
    dev.osc("compute", "service", "set", "--enable", "compute-kvm-1", "nova-compute")
    kvm1 = services(dev)["compute-kvm-1"]
    assert (kvm1["Status"], kvm1["Disabled Reason"]) == ("enabled", None)
    dev.osc("compute", "service", "set", "--down", "compute-kvm-1", "nova-compute")
    kvm1 = services(dev)["compute-kvm-1"]
    assert (kvm1["State"], kvm1["Forced Down"]) == ("down", True)
    dev.osc("compute", "service", "set", "--up", "compute-kvm-1", "nova-compute")
    assert services(dev)["compute-kvm-1"]["State"] == "up"


def test_openstack_cli__service_set_below_253_uses_the_action_routes(operator_dev: DevServer) -> None:
    dev = operator_dev
    old = ("--os-compute-api-version", "2.11")
    dev.osc(*old, "compute", "service", "set", "--disable", "--disable-reason", "fan", "--down", "compute-kvm-3",
        "nova-compute")
    kvm3 = services(dev, *old)["compute-kvm-3"]
    assert (kvm3["ID"], kvm3["Status"], kvm3["Disabled Reason"], kvm3["State"], kvm3["Forced Down"]) == (
        3, "disabled", "fan", "down", True)
    dev.osc(*old, "compute", "service", "set", "--enable", "--up", "compute-kvm-3", "nova-compute")
    kvm3 = services(dev)["compute-kvm-3"]
    assert (kvm3["Status"], kvm3["State"]) == ("enabled", "up")


def test_openstack_cli__a_disabled_host_gets_no_new_server(operator_dev: DevServer) -> None:
    dev = operator_dev
    listed = dev.osc("compute", "service", "list", "-f", "json")
    others = sorted(s["Host"] for s in listed if s["Host"] != "compute-xen-2")
    try:
        for host in others:
            dev.osc("compute", "service", "set", "--disable", "--disable-reason", "drain", host, "nova-compute")
        server = dev.boot("drained", flavor="1")
        assert host_of(dev, server["id"]) == "compute-xen-2"
        dev.osc("server", "delete", "--wait", server["id"])
    finally:
        for host in others:
            dev.openstack("compute", "service", "set", "--enable", host, "nova-compute")


def test_novaclient__services_by_host_below_253_and_by_uuid_from_253(operator_dev: DevServer) -> None:
    legacy = nova(operator_dev, "2.11")
    legacy.services.disable_log_reason("compute-xen-1", "nova-compute", "old way")
    legacy.services.force_down("compute-xen-1", "nova-compute", True)
    [xen1] = legacy.services.list(host="compute-xen-1")
    assert (xen1.status, xen1.disabled_reason, xen1.forced_down, xen1.state) == ("disabled", "old way", True, "down")
    current = nova(operator_dev, "2.53")
    [xen1] = current.services.list(host="compute-xen-1")
    current.services.enable(xen1.id)
    current.services.force_down(xen1.id, False)
    [xen1] = current.services.list(host="compute-xen-1")
    assert (xen1.status, xen1.disabled_reason, xen1.forced_down, xen1.state) == ("enabled", None, False, "up")


# ---- aggregates and zones --------------------------------------------------------------------------------
def test_openstack_cli__aggregate_lifecycle_and_zone_listing(operator_dev: DevServer) -> None:
    dev = operator_dev
    created = dev.osc("aggregate", "create", "--zone", "az1", "--property", "ssd=true", "agg-az1", "-f", "json")
    assert (created["name"], created["availability_zone"]) == ("agg-az1", "az1")
    for host in AZ1:
        dev.osc("aggregate", "add", "host", "agg-az1", host)
    [listed] = dev.osc("aggregate", "list", "--long", "-f", "json")
    assert (listed["Name"], listed["Availability Zone"], listed["Hosts"]) == ("agg-az1", "az1", list(AZ1))
    dev.osc("aggregate", "set", "--property", "rack=r1", "agg-az1")
    dev.osc("aggregate", "unset", "--property", "rack", "agg-az1")
    shown = dev.osc("aggregate", "show", "agg-az1", "-f", "json")
    assert shown["properties"] == {"ssd": "true"} and shown["hosts"] == list(AZ1)
    assert services(dev)["compute-kvm-1"]["Zone"] == "az1" and services(dev)["compute-kvm-3"]["Zone"] == "nova"

    zones = dev.osc("availability", "zone", "list", "-f", "json")
    assert {(z["Zone Name"], z["Zone Status"]) for z in zones} == {("az1", "available"), ("nova", "available")}
    rows = dev.osc("availability", "zone", "list", "--long", "-f", "json")
    assert {r["Host Name"] for r in rows if r["Zone Name"] == "az1"} == set(AZ1)
    assert all(r["Service Name"] == "nova-compute" for r in rows)

    hypervisor = dev.osc("hypervisor", "show", "compute-kvm-1", "-f", "json")
    assert hypervisor["aggregates"] == ["agg-az1"]
    assert hypervisor["uptime"] and hypervisor["load_average"]
    older = dev.osc("--os-compute-api-version", "2.53", "hypervisor", "show", "compute-kvm-3", "-f", "json")
    assert older["aggregates"] == [] and older["uptime"]  # from GET /os-hypervisors/{id}/uptime


def test_openstack_cli__a_server_booted_into_a_zone_moves_only_within_it(operator_dev: DevServer) -> None:
    dev = operator_dev
    conn = sdk(dev)
    server = dev.boot("in-az1", "--availability-zone", "az1", flavor="1")
    first = host_of(dev, server["id"])
    assert first in AZ1 and server["OS-EXT-AZ:availability_zone"] == "az1"
    other = AZ1[1] if first == AZ1[0] else AZ1[0]
    dev.osc("server", "migrate", "--live-migration", server["id"])
    conn.compute.wait_for_server(conn.compute.get_server(server["id"]), status="ACTIVE", wait=90, interval=0.3)
    assert host_of(dev, server["id"]) == other  # compute-kvm-3 has more free RAM, but is not in az1
    dev.osc("server", "migrate", server["id"])
    conn.compute.wait_for_server(conn.compute.get_server(server["id"]), status="VERIFY_RESIZE", wait=90,
                                 interval=0.3)
    assert host_of(dev, server["id"]) == first
    dev.osc("server", "migration", "confirm", server["id"])
    conn.compute.wait_for_server(conn.compute.get_server(server["id"]), status="ACTIVE", wait=90, interval=0.3)

    refused = dev.openstack("aggregate", "remove", "host", "agg-az1", first)
    assert refused.returncode != 0 and "would change" in refused.stderr  # 409: its server would change zone
    dev.osc("server", "delete", "--wait", server["id"])


def test_novaclient_and_sdk__aggregates_zones_and_uptime(operator_dev: DevServer) -> None:
    client = nova(operator_dev, "2.53")
    aggregate = client.aggregates.create("agg-nova", None)
    client.aggregates.set_metadata(aggregate, {"availability_zone": "az2", "gpu": "yes"})
    client.aggregates.add_host(aggregate, "compute-kvm-3")
    updated = client.aggregates.update(aggregate, {"name": "agg-az2"})
    assert (updated.name, updated.availability_zone, updated.hosts) == ("agg-az2", "az2", ["compute-kvm-3"])
    assert {z.zoneName for z in client.availability_zones.list(detailed=False)} == {"az1", "az2", "nova"}
    detailed = {z.zoneName: z for z in client.availability_zones.list(detailed=True)}
    assert list(detailed["az2"].hosts) == ["compute-kvm-3"]
    [kvm3] = client.hypervisors.search("compute-kvm-3")
    assert OSC_UPTIME.match(client.hypervisors.uptime(kvm3.id).uptime)

    conn = sdk(operator_dev)
    zones = {z.name: z for z in conn.compute.availability_zones(details=True)}
    assert zones["az2"].state == {"available": True} and "compute-kvm-3" in zones["az2"].hosts
    found = conn.compute.find_aggregate("agg-az2", ignore_missing=False)
    assert found.metadata["gpu"] == "yes"
    conn.compute.remove_host_from_aggregate(found, "compute-kvm-3")
    conn.compute.delete_aggregate(found)
    assert "agg-az2" not in [a.name for a in conn.compute.aggregates()]
    assert "az2" not in {z.name for z in conn.compute.availability_zones()}


def test_openstack_cli__service_delete_removes_the_host(operator_dev: DevServer) -> None:
    dev = operator_dev
    xen2 = services(dev)["compute-xen-2"]["ID"]
    dev.osc("compute", "service", "delete", xen2)
    assert "compute-xen-2" not in services(dev)
    hypervisors = dev.osc("hypervisor", "list", "-f", "json")
    assert "compute-xen-2" not in [h["Hypervisor Hostname"] for h in hypervisors]
