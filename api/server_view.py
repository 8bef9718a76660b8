"""The server body, per microversion and per policy (nova/api/openstack/compute/views/servers.py).

Clients poll ``status``, ``OS-EXT-STS:*`` and (admins) ``OS-EXT-SRV-ATTR:host``; OSC
needs ``flavor``. Keys appear from the microversion that introduced them; the
``OS-EXT-SRV-ATTR:*`` keys only for callers passing the extended-attributes policy.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from api import current, links, microversions
from api.lookup import allowed_for_server
from api.microversions import APIVersion
from api.timestamps import isotime
from compute.models import Flavor, Host, Instance
from compute.scheduler import public_reason
from compute.states import FAULT_STATUSES, PROGRESS_STATUSES, server_status

EXTENDED_ATTRIBUTES_RULE = "os_compute_api:os-extended-server-attributes"
HOST_STATUS_RULE = "os_compute_api:servers:show:host_status"


def host_id(project_id: str | None, host: str | None) -> str:
    """Nova's ``generate_hostid``: an opaque per-project name for the host, "" without one."""
    if not host:
        return ""
    return hashlib.sha224(((project_id or "") + host).encode("utf-8")).hexdigest()


def status_of(instance: Instance) -> str:
    return "DELETED" if instance.deleted else server_status(instance.vm_state, instance.task_state)


def summary(instance: Instance) -> dict[str, Any]:
    return {"id": instance.id, "name": instance.name, "links": links.self_and_bookmark("servers", instance.id)}


def flavor_view(flavor: Flavor, mv: APIVersion) -> dict[str, Any]:
    if mv >= (2, 47):
        return {
            "vcpus": flavor.vcpus,
            "ram": flavor.ram,
            "disk": flavor.disk,
            "ephemeral": flavor.ephemeral,
            "swap": flavor.swap,
            "original_name": flavor.name,
            "extra_specs": dict(flavor.extra_specs),
        }
    return {"id": flavor.id, "links": links.bookmark("flavors", flavor.id)}


def image_view(image_id: str | None) -> dict[str, Any] | str:
    if not image_id:
        return ""
    return {"id": image_id, "links": links.bookmark("images", image_id)}


def fault_view(fault: dict[str, Any], is_admin: bool) -> dict[str, Any]:
    """Nova's ``fault``. A failure's message may go on with the host-by-host explanation the
    scheduler gives (compute/scheduler.py ``with_explanation``): that names other hosts and their
    usage, so only admins read it; everyone else gets the Nova message it starts with."""
    code = fault.get("code", 500)
    message = fault.get("message", "")
    view = {"code": code, "created": isotime(fault.get("created")) or fault.get("created"),
            "message": message if is_admin else public_reason(message)}
    if "details" in fault and (is_admin or code != 500):
        view["details"] = fault["details"]
    return view


def hostname_of(name: str) -> str:
    """Nova's sanitised ``hostname``: lower case, [a-z0-9-] only."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-.")
    return cleaned[:63] or "server"


def hostname_for(instance: Instance) -> str:
    """The server's hostname, as its create set it (servers recorded before it was kept: made from the name)."""
    return instance.hostname or hostname_of(instance.name)


def reservation_id_of(instance: Instance) -> str:
    """The reservation id of the create that made the server (older records: one made from its id)."""
    return instance.reservation_id or f"r-{instance.id.replace('-', '')[8:16]}"


def host_status(host: Host | None) -> str:
    if host is None:
        return "UNKNOWN"
    if not host.service_is_up:
        return "DOWN"
    if not host.enabled:
        return "MAINTENANCE"
    return "UP"


class ServerViewBuilder:
    """Builds full server bodies for one request; each host record is read at most once, and only the
    hosts of the servers shown (never the fleet)."""

    def __init__(self) -> None:
        self.mv = microversions.current()
        self.is_admin = current.context().is_admin
        self._hosts: dict[str, Host | None] = {}

    def prefetch(self, instances: list[Instance]) -> None:
        """Read the hosts of a page of servers together (three round trips for the page)."""
        names = [i.host for i in instances if i.host and i.host not in self._hosts]
        if names:
            found = current.service().store.get_hosts(names)
            self._hosts.update({name: found.get(name) for name in names})

    def host(self, name: str | None) -> Host | None:
        if not name:
            return None
        if name not in self._hosts:
            self._hosts[name] = current.service().store.get_host(name)
        return self._hosts[name]

    def availability_zone(self, instance: Instance) -> str:
        """Nova's ``get_instance_availability_zone``: the host's zone once it has one, else the zone
        the create asked for, else "" (never null)."""
        host = self.host(instance.host)
        if host is not None:
            return host.availability_zone
        return instance.availability_zone or ""

    def full(self, instance: Instance, *, show_server_groups: bool = False) -> dict[str, Any]:
        """The server body; ``server_groups`` (2.71) only where Nova shows it: show, not the list."""
        mv = self.mv
        status = status_of(instance)
        view: dict[str, Any] = {
            "id": instance.id,
            "name": instance.name,
            "status": status,
            "tenant_id": instance.project_id,
            "user_id": instance.user_id,
            "metadata": dict(instance.metadata),
            "hostId": host_id(instance.project_id, instance.host),
            "image": image_view(instance.image_id),
            "flavor": flavor_view(instance.flavor, mv),
            "created": isotime(instance.created_at),
            "updated": isotime(instance.updated_at),
            "addresses": {},
            "accessIPv4": instance.access_ip_v4 or "",
            "accessIPv6": instance.access_ip_v6 or "",
            "links": links.self_and_bookmark("servers", instance.id),
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": self.availability_zone(instance),
            "config_drive": "",
            "key_name": None,
            "OS-SRV-USG:launched_at": instance.launched_at,
            "OS-SRV-USG:terminated_at": instance.terminated_at,
            "OS-EXT-STS:vm_state": instance.vm_state,
            "OS-EXT-STS:task_state": instance.task_state,
            "OS-EXT-STS:power_state": instance.power_state,
            "os-extended-volumes:volumes_attached": [],
            "security_groups": [{"name": "default"}],
        }
        if status in PROGRESS_STATUSES:
            view["progress"] = instance.progress or 0
        if status in FAULT_STATUSES and instance.fault:
            view["fault"] = fault_view(instance.fault, self.is_admin)
        if allowed_for_server(EXTENDED_ATTRIBUTES_RULE, instance):
            view.update(self.extended_attributes(instance))
        if mv >= (2, 9):
            view["locked"] = instance.locked
        if mv >= (2, 16) and allowed_for_server(HOST_STATUS_RULE, instance):
            view["host_status"] = host_status(self.host(instance.host)) if instance.host else ""
        if mv >= (2, 19):
            view["description"] = None
        if mv >= (2, 26):
            view["tags"] = []
        if mv >= (2, 63):
            view["trusted_image_certificates"] = None
        if show_server_groups and mv >= (2, 71):
            view["server_groups"] = []
        if mv >= (2, 73):
            view["locked_reason"] = instance.locked_reason
        if mv >= (2, 90):  # shown to everyone from 2.90 (views/servers.py)
            view["OS-EXT-SRV-ATTR:hostname"] = hostname_for(instance)
        if mv >= (2, 96):
            view["pinned_availability_zone"] = instance.availability_zone
        if mv >= (2, 100):
            view["scheduler_hints"] = {}
        return view

    def extended_attributes(self, instance: Instance) -> dict[str, Any]:
        compact = instance.id.replace("-", "")
        attrs: dict[str, Any] = {
            "OS-EXT-SRV-ATTR:host": instance.host,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": instance.node,
            "OS-EXT-SRV-ATTR:instance_name": f"instance-{compact[:8]}",
        }
        if self.mv >= (2, 3):
            attrs.update({
                "OS-EXT-SRV-ATTR:reservation_id": reservation_id_of(instance),
                "OS-EXT-SRV-ATTR:launch_index": instance.launch_index,
                "OS-EXT-SRV-ATTR:hostname": hostname_for(instance),
                "OS-EXT-SRV-ATTR:kernel_id": "",
                "OS-EXT-SRV-ATTR:ramdisk_id": "",
                "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                "OS-EXT-SRV-ATTR:user_data": None,
            })
        return attrs

