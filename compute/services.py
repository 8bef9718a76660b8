"""The compute services: one ``nova-compute`` per fleet host, and what os-services and
os-hypervisors do with them beyond reading (nova/api/openstack/compute/services.py, HostAPI).

Enabling, disabling and forcing down are plain host updates (``Store.update_host``, one
compare-and-set); the scheduler's ComputeFilter then keeps new servers and moves away from a
disabled or down host. Deleting a service removes its host (and so its hypervisor) and its
aggregate memberships, refused while servers are on it or migrations involve it.
"""
from __future__ import annotations

import time

from compute import errors
from compute.models import Host, HostUsage
from compute.store import Store, iso_to_epoch
from compute.store.hosts import HOSTING_INSTANCES

BINARY = "nova-compute"

IN_PROGRESS_MIGRATIONS = ("Unable to delete compute service that has in-progress migrations. "
                          "Complete the migrations or delete the instances first.")


class ComputeServiceUnavailable(errors.Invalid):
    def __init__(self, host: str) -> None:
        super().__init__(f"Compute service of {host} is unavailable at this time.")


def delete_service(store: Store, host: str) -> None:
    """DELETE /os-services/{id} for a nova-compute: Nova's two 409s, then one atomic delete.

    The store refuses again (409) if a server claimed the host in between. Both checks read the host's
    own indexes (its claims, its migrations in progress), never every server or migration.
    """
    if any(not i.deleted for i in store.servers_claiming([host])):
        raise errors.Conflict(HOSTING_INSTANCES)
    if store.migrations_in_progress_on(host):
        raise errors.Conflict(IN_PROGRESS_MIGRATIONS)
    store.delete_host(host)


def uptime(store: Store, host: Host, usage: HostUsage, clock_offset: float | None = None) -> str:
    """The hypervisor's ``uptime`` output (libvirt's ``get_host_uptime``), on the fleet's clock.

    A host whose service is down or forced down cannot be asked: ComputeServiceUnavailable.
    ``clock_offset``: the fleet clock's offset when the caller read it once for many hosts.
    """
    if not host.in_service:
        raise ComputeServiceUnavailable(host.name)
    now = time.time() + (store.fleet_clock_offset() if clock_offset is None else clock_offset)
    load = usage.vcpus_used / host.vcpus if host.vcpus else 0.0
    return uptime_text(now, iso_to_epoch(host.started_at), load)


def uptime_text(now: float, booted: float, load: float = 0.0) -> str:
    """As procps ``uptime`` prints it: `` 17:37:14 up 3 days,  2:33,  0 users,  load average: ...``."""
    seconds = max(0, int(now - booted))
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    up = f"{days} day{'' if days == 1 else 's'}, " if days else ""
    up += f"{hours:2d}:{minutes:02d}" if hours else f"{minutes} min"
    clock = time.strftime("%H:%M:%S", time.gmtime(now))
    return f" {clock} up {up},  0 users,  load average: {load:.2f}, {load:.2f}, {load:.2f}"
