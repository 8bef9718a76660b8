"""Hypervisors, one per fleet host (nova hypervisors.py).

Ids are the host's service_id below 2.53 and Host.uuid from 2.53. Usage comes from the
store's claims, so it moves as servers land and leave. Per microversion, as Nova: 2.28
``cpu_info`` is an object (a JSON string before), 2.33 paging, 2.53 uuid ids with the
``hypervisor_hostname_pattern`` and ``with_servers`` query (the search and servers routes go),
2.75 ``servers: []`` when asked and empty, and 2.88 drops the usage fields, ``cpu_info`` and
the statistics and uptime routes, and shows ``uptime`` (null for a down host) instead.
"""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, jsonify

from api import current, links, microversions, paging, query
from api.errors import ApiError, bad_request, not_found
from api.schemas import digit_string_value, is_uuid_like
from compute import services
from compute.models import Host, HostUsage

bp = Blueprint("hypervisors", __name__, url_prefix="/v2.1")

RULE = "os_compute_api:os-hypervisors:{}"
USAGE_REMOVED = (2, 88)
UUID_IDS = (2, 53)


def hypervisor_id(host: Host, mv: microversions.APIVersion) -> int | str:
    return host.uuid if mv >= UUID_IDS else host.service_id


def is_up(host: Host) -> bool:
    return host.service_is_up


def summary_view(host: Host, mv: microversions.APIVersion) -> dict[str, Any]:
    return {
        "id": hypervisor_id(host, mv),
        "hypervisor_hostname": host.node,
        "state": "up" if is_up(host) else "down",
        "status": "enabled" if host.enabled else "disabled",
    }


def cpu_info(host: Host) -> dict[str, Any]:
    return {
        "arch": "x86_64",
        "model": host.cpu_model,
        "vendor": "Intel",
        "features": [],
        "topology": {"cells": 1, "sockets": 1, "cores": host.vcpus, "threads": 1},
    }


def detail_view(host: Host, usage: HostUsage, mv: microversions.APIVersion,
                clock_offset: float | None = None) -> dict[str, Any]:
    view = summary_view(host, mv)
    view.update({
        "hypervisor_type": host.hypervisor_type,
        "hypervisor_version": host.hypervisor_version,
        "host_ip": host.host_ip,
        "service": {
            "host": host.name,
            "id": host.service_uuid if mv >= UUID_IDS else host.service_id,
            "disabled_reason": host.disabled_reason,
        },
    })
    if mv >= USAGE_REMOVED:
        try:
            view["uptime"] = services.uptime(current.service().store, host, usage, clock_offset)
        except services.ComputeServiceUnavailable:
            view["uptime"] = None
        return view
    free_disk = host.local_gb - usage.local_gb_used
    view.update({
        "vcpus": host.vcpus,
        "vcpus_used": usage.vcpus_used,
        "memory_mb": host.memory_mb,
        "memory_mb_used": usage.memory_mb_used,
        "local_gb": host.local_gb,
        "local_gb_used": usage.local_gb_used,
        "free_ram_mb": host.memory_mb - usage.memory_mb_used,
        "free_disk_gb": free_disk,
        "disk_available_least": free_disk,
        "current_workload": 0,
        "running_vms": usage.running_vms,
        "cpu_info": cpu_info(host) if mv >= (2, 28) else json.dumps(cpu_info(host)),
    })
    return view


def servers_by_host(hosts: list[Host]) -> dict[str, list[dict[str, str]]]:
    """Each of ``hosts``' servers (not deleted), newest first, read from their claims (O(their servers),
    whatever the fleet)."""
    ctx = current.context()
    store = current.service().store
    instances = sorted(store.servers_claiming([h.name for h in hosts]), key=lambda i: i.created_at, reverse=True)
    instances = [i for i in instances if not i.deleted and (ctx.is_admin or i.project_id == ctx.project_id)]
    found: dict[str, list[dict[str, str]]] = {}
    for instance in instances:
        if instance.host:
            found.setdefault(instance.host, []).append({"name": instance.name, "uuid": instance.id})
    return found


def add_servers(view: dict[str, Any], host: Host, servers: dict[str, list[dict[str, str]]],
                mv: microversions.APIVersion) -> None:
    on_host = servers.get(host.name, [])
    if on_host or mv >= (2, 75):
        view["servers"] = on_host


def authorize(action: str) -> None:
    ctx = current.context()
    current.authorize(RULE.format(action), {"project_id": ctx.project_id, "user_id": ctx.user_id})


def hostname_pattern(name: str, raw: str) -> str:
    """``parameter_types.fqdn``: what a hypervisor hostname may be made of."""
    if not raw or len(raw) > 255 or re.fullmatch(r"[a-zA-Z0-9-._]*", raw) is None:
        raise bad_request(f"Invalid input for query parameters {name}. Value: {raw}. "
                          f"'{raw}' does not match '^[a-zA-Z0-9-._]*$'")
    return raw


def list_query_parsers(mv: microversions.APIVersion) -> dict[str, query.Parser]:
    if mv >= UUID_IDS:
        return {"limit": query.non_negative_int, "marker": query.text,
                "hypervisor_hostname_pattern": hostname_pattern, "with_servers": query.boolean}
    if mv >= (2, 33):
        return {"limit": query.non_negative_int, "marker": query.text}
    return {}


def _listing(detailed: bool) -> Any:
    mv = microversions.current()
    params = query.parse(list_query_parsers(mv), strict=mv >= UUID_IDS)
    authorize("list-detail" if detailed else "list")
    pattern = params.get("hypervisor_hostname_pattern")
    if pattern is not None and ("limit" in params or "marker" in params):
        raise bad_request("Paging over hypervisors with the hypervisor_hostname_pattern "
                          "query parameter is not supported.")
    marker = params.get("marker")
    limit = paging.effective_limit(params.get("limit"))
    if pattern is not None:  # a substring of the name (Nova's LIKE), no paging: the matches only
        hosts = _matching(pattern)[:limit]
    else:
        after = None
        if marker is not None:
            found = marker_host(marker, mv)
            if found is None:
                raise bad_request(f"marker [{marker}] not found")
            after = found.service_id
        hosts = current.service().store.page_hosts(limit, after)
    servers = servers_by_host([h for h, _ in hosts]) if params.get("with_servers") else None
    items = []
    clock_offset = current.service().store.fleet_clock_offset() if detailed and mv >= USAGE_REMOVED else None
    for host, usage in hosts:
        view = detail_view(host, usage, mv, clock_offset) if detailed else summary_view(host, mv)
        if servers is not None:
            add_servers(view, host, servers, mv)
        items.append(view)
    body: dict[str, Any] = {"hypervisors": items}
    if mv >= (2, 33) and paging.page_is_full(hosts, limit):
        body["hypervisors_links"] = [links.next_link("os-hypervisors/detail" if detailed else "os-hypervisors",
                                                     str(hypervisor_id(hosts[-1][0], mv)))]
    return jsonify(body)


@bp.get("/os-hypervisors")
def list_hypervisors() -> Any:
    return _listing(detailed=False)


@bp.get("/os-hypervisors/detail")
def list_hypervisors_detail() -> Any:
    return _listing(detailed=True)


def find_host(hypervisor_ref: str, mv: microversions.APIVersion) -> tuple[Host, HostUsage]:
    missing = ApiError(404, f"Hypervisor with ID '{hypervisor_ref}' could not be found.")
    if mv >= UUID_IDS:
        if not is_uuid_like(hypervisor_ref):
            raise bad_request(f"Invalid uuid {hypervisor_ref}")
        wanted: int | str = hypervisor_ref.lower()
    else:
        service_id = digit_string_value(hypervisor_ref)
        if service_id is None:  # not digits, or more of them than any id has: no such hypervisor
            raise missing
        wanted = service_id
    name = lookup_host(wanted)
    found = current.service().store.hosts_with_usage([name]) if name is not None else []
    if not found or hypervisor_id(found[0][0], mv) != wanted:
        raise missing
    return found[0]


def lookup_host(wanted: int | str) -> str | None:
    """The host behind a hypervisor id: one read of the store's lookups, never the fleet."""
    store = current.service().store
    if isinstance(wanted, str):
        return store.host_by_hypervisor_id(uuid=wanted)
    return store.host_by_hypervisor_id(service_id=wanted)


def marker_host(marker: str, mv: microversions.APIVersion) -> Host | None:
    """The host a page's marker names (a uuid from 2.53, a service id below), or None."""
    if mv >= UUID_IDS:
        name = lookup_host(marker.lower()) if is_uuid_like(marker) else None
    else:
        service_id = digit_string_value(marker)
        name = lookup_host(service_id) if service_id is not None else None
    host = current.service().store.get_host(name) if name is not None else None
    return host if host is not None and str(hypervisor_id(host, mv)) == marker else None


@bp.get("/os-hypervisors/<hypervisor_ref>")
def show_hypervisor(hypervisor_ref: str) -> Any:
    mv = microversions.current()
    params = query.parse({"with_servers": query.boolean}, strict=True) if mv >= UUID_IDS else {}
    authorize("show")
    host, usage = find_host(hypervisor_ref, mv)
    view = detail_view(host, usage, mv)
    if params.get("with_servers"):
        add_servers(view, host, servers_by_host([host]), mv)
    return jsonify({"hypervisor": view})


@bp.get("/os-hypervisors/<hypervisor_ref>/uptime")
def hypervisor_uptime(hypervisor_ref: str) -> Any:
    """Below 2.88 only (the 2.88 show has ``uptime``): the summary view plus the host's uptime."""
    microversions.require((2, 1), (2, 87))
    mv = microversions.current()
    authorize("uptime")
    host, usage = find_host(hypervisor_ref, mv)
    try:
        uptime = services.uptime(current.service().store, host, usage)
    except services.ComputeServiceUnavailable as exc:
        raise bad_request(exc.message) from None
    return jsonify({"hypervisor": {**summary_view(host, mv), "uptime": uptime}})


@bp.get("/os-hypervisors/statistics")
def hypervisor_statistics() -> Any:
    """Nova's compute_node_statistics: the enabled hosts' sums (up or down), kept by the store as hosts
    and claims change (``hosts:totals``), so one read whatever the fleet."""
    microversions.require((2, 1), (2, 87))
    authorize("statistics")
    totals = current.service().store.host_statistics()
    free_disk = totals["local_gb"] - totals["local_gb_used"]
    return jsonify({"hypervisor_statistics": {
        "count": totals["count"], "vcpus": totals["vcpus"], "vcpus_used": totals["vcpus_used"],
        "memory_mb": totals["memory_mb"], "memory_mb_used": totals["memory_mb_used"],
        "local_gb": totals["local_gb"], "local_gb_used": totals["local_gb_used"],
        "free_ram_mb": totals["memory_mb"] - totals["memory_mb_used"], "free_disk_gb": free_disk,
        "current_workload": 0, "running_vms": totals["running_vms"], "disk_available_least": free_disk,
    }})


def _matching(pattern: str) -> list[tuple[Host, HostUsage]]:
    """The hosts whose name holds ``pattern``, by service id: the store's trigram index, then just their
    records (``Store.hosts_named_like`` says what a pattern under 3 characters costs)."""
    store = current.service().store
    hosts = sorted(store.hosts_with_usage(store.hosts_named_like(pattern)), key=lambda pair: pair[0].service_id)
    if not hosts:
        raise not_found(f"No hypervisor matching '{pattern}' could be found.")
    return hosts


@bp.get("/os-hypervisors/<pattern>/search")
def search_hypervisors(pattern: str) -> Any:
    microversions.require((2, 1), (2, 52))
    authorize("search")
    mv = microversions.current()
    return jsonify({"hypervisors": [summary_view(h, mv) for h, _ in _matching(pattern)]})


@bp.get("/os-hypervisors/<pattern>/servers")
def hypervisor_servers(pattern: str) -> Any:
    microversions.require((2, 1), (2, 52))
    authorize("servers")
    mv = microversions.current()
    hosts = [h for h, _ in _matching(pattern)]
    servers = servers_by_host(hosts)
    items = []
    for host in hosts:
        view = summary_view(host, mv)
        add_servers(view, host, servers, mv)
        items.append(view)
    return jsonify({"hypervisors": items})
