"""POST /servers: the server records (BUILD/scheduling), their create actions and flows, in one MULTI.

Quotas as Nova checks them: metadata items first (403 ``Maximum number of metadata items
exceeds <n>``), then instances, cores and ram, checked by the store under the WATCH of the
project's usage and written in the records' MULTI (403 ``Quota exceeded for instances: ...``).

A request makes between ``min_count`` and ``max_count`` servers (nova/compute/api.py
``_provision_instances``): as many as the quotas allow up to ``max_count``, and none at all if
that is fewer than ``min_count``. With more than one, each is named ``<name>-<n>`` (n from 1)
and so is its hostname. They share one reservation id (``r-`` and 8 characters). Each server
has its own ``create`` action and flow: the first under the request's id, the others under ids
derived from it (actions are kept by request id here; Nova gives all of them the request's).

A requested destination (2.74 ``host`` / ``hypervisor_hostname``) must name a compute host
(and node) that exists; the scheduler then checks it with every filter (Nova's
``requested_destination``), where a host in ``availability_zone`` is forced.
"""
from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import dataclass

from compute import errors, quotas, telemetry
from compute.context import RequestContext
from compute.instance_actions import CREATE
from compute.models import FlowRun, Instance, InstanceAction
from compute.service import ComputeService
from compute.states import TaskState, VmState
from compute.store.instances import NewServer

# No quota may be unlimited enough to build a million records in one MULTI: past this, a request
# gets this many servers (at most), as a quota would reduce it.
MAX_SERVERS_PER_REQUEST = 1000
_RESERVATION_CHARS = string.digits + string.ascii_lowercase  # nova/utils.py generate_uid
_REQUEST_NAMESPACE = uuid.UUID("8f0d3d56-0d7b-4a59-9d5c-2f1a1d5e7c42")


@dataclass(frozen=True)
class CreatedServers:
    instances: list[Instance]
    reservation_id: str


def create_server(
    service: ComputeService,
    ctx: RequestContext,
    *,
    name: str,
    flavor_id: str,
    image_id: str | None,
    availability_zone: str | None = None,
    metadata: dict[str, str] | None = None,
    access_ip_v4: str | None = None,
    access_ip_v6: str | None = None,
) -> Instance:
    """One server (the common case, and what fixtures and benches boot)."""
    return create_servers(service, ctx, name=name, flavor_id=flavor_id, image_id=image_id,
                          availability_zone=availability_zone, metadata=metadata,
                          access_ip_v4=access_ip_v4, access_ip_v6=access_ip_v6).instances[0]


def create_servers(
    service: ComputeService,
    ctx: RequestContext,
    *,
    name: str,
    flavor_id: str,
    image_id: str | None,
    availability_zone: str | None = None,
    metadata: dict[str, str] | None = None,
    access_ip_v4: str | None = None,
    access_ip_v6: str | None = None,
    hostname: str | None = None,
    requested_host: str | None = None,
    requested_node: str | None = None,
    min_count: int = 1,
    max_count: int = 1,
) -> CreatedServers:
    if min_count > max_count:
        raise errors.Invalid("min_count must be <= max_count")
    if min_count > MAX_SERVERS_PER_REQUEST:
        raise errors.Invalid(f"min_count may not be more than {MAX_SERVERS_PER_REQUEST}")
    max_count = min(max_count, MAX_SERVERS_PER_REQUEST)
    try:
        flavor = service.get_flavor(flavor_id)
    except errors.NotFound as exc:
        raise errors.Invalid(exc.message) from None
    if image_id is not None:
        try:
            service.get_image(ctx, image_id)
        except errors.NotFound:
            raise errors.Invalid("Can not find requested image") from None
    zone, forced_host = parse_availability_zone(service, availability_zone)
    if hostname and max_count > 1:
        raise errors.Invalid("Unable to allocate a single hostname to multiple instances")
    options = service.settings.quota
    quotas.check_server_metadata(options, service.store.quota_snapshot(ctx.project_id or "", ctx.user_id), metadata)
    destination = requested_destination(service, requested_host, requested_node) or forced_host
    reservation_id = new_reservation_id()
    server_ids: list[str] = []

    def build(count: int) -> list[NewServer]:
        built = []
        for index in range(count):
            inst = Instance(
                name=server_name(name, count, index), project_id=ctx.project_id or "", user_id=ctx.user_id or "",
                flavor=flavor, image_id=image_id, availability_zone=zone, requested_host=destination,
                vm_state=VmState.BUILDING, task_state=TaskState.SCHEDULING, metadata=dict(metadata or {}),
                access_ip_v4=access_ip_v4, access_ip_v6=access_ip_v6, reservation_id=reservation_id,
                launch_index=index,
            )
            if index < len(server_ids):
                inst.id = server_ids[index]  # a retried MULTI writes the same servers
            else:
                server_ids.append(inst.id)
            inst.hostname = hostname or server_hostname(name, count, index, inst.id)
            request_id = server_request_id(ctx.request_id, index)
            built.append(NewServer(
                inst,
                InstanceAction(request_id=request_id, action=CREATE, instance_uuid=inst.id,
                               user_id=ctx.user_id, project_id=ctx.project_id),
                FlowRun(request_id=request_id, flow=CREATE, instance_uuid=inst.id)))
        return built

    created = service.store.create_instances(
        build, max_count, service.settings.engine.start_grace_seconds,
        project_id=ctx.project_id or "", user_id=ctx.user_id,
        count_allowed=quotas.instance_create_count(options, flavor, min_count, max_count))
    try:
        for new in created:
            service.enqueuer.enqueue(new.run.request_id, 0, action=new.run.flow, server_id=new.run.instance_uuid)
    except errors.QueueUnavailable:
        # Nothing of the request is kept: the actions and runs go first, so a message already
        # queued for one of them finds no run and drops itself.
        for new in created:
            service.store.delete_action(new.action)
        for new in created:
            service.store.purge_instance_record(new.instance.id)
        raise
    for new in created:
        telemetry.observer().action_accepted(new.run.flow)
    return CreatedServers([new.instance for new in created], reservation_id)


def server_name(name: str, count: int, index: int) -> str:
    """Nova's ``_populate_instance_names``: a suffix only when the request makes several."""
    return f"{name}-{index + 1}" if count > 1 else name


def server_hostname(name: str, count: int, index: int, server_id: str) -> str:
    """The hostname Nova makes when none is asked for: the name sanitised, then the same suffix."""
    hostname = sanitize_hostname(name)
    if not hostname:
        return f"Server-{server_id}"
    return f"{hostname}-{index + 1}" if count > 1 else hostname


def sanitize_hostname(name: str) -> str:
    """nova/utils.py ``sanitize_hostname``: Latin-1 only, at most 63 characters, ``[ _.]`` become
    ``-``, anything but word characters, ``.`` and ``-`` dropped, lower case, no leading or
    trailing ``.``/``-``."""
    hostname = name.encode("latin-1", "ignore").decode("latin-1")[:63]
    hostname = re.sub(r"[ _.]", "-", hostname)
    hostname = re.sub(r"[^\w.-]+", "", hostname)
    return hostname.lower().strip(".-")


def new_reservation_id() -> str:
    """nova/utils.py ``generate_uid('r')``: ``r-`` and 8 characters of [0-9a-z]."""
    return "r-" + "".join(secrets.choice(_RESERVATION_CHARS) for _ in range(8))


def server_request_id(request_id: str, index: int) -> str:
    """The request id of the ``index``-th server's create action: the request's own for the first."""
    if index == 0:
        return request_id
    return f"req-{uuid.uuid5(_REQUEST_NAMESPACE, f'{request_id}/{index}')}"


def requested_destination(service: ComputeService, host: str | None, node: str | None) -> str | None:
    """Nova's ``_validate_host_or_node``: the host (and node) must exist, else ``Compute host X could
    not be found.``; the answer is the host the scheduler is to check."""
    if not host and not node:
        return None
    name = host or node or ""
    found = service.store.get_host(name)  # a host's node is its own name (Host.node)
    if found is None or (node and found.node != node):
        raise errors.Invalid(f"Compute host {name} could not be found.")
    return found.name


def parse_availability_zone(service: ComputeService, value: str | None) -> tuple[str | None, str | None]:
    """``zone``, ``zone:host``, ``zone:host:node`` or ``zone::node`` -> (pinned zone, forced host).

    Hosts' zones come from their aggregates; compute/aggregates.py has Nova's rules. The host
    part is checked by policy upstream.
    """
    from compute import aggregates

    return aggregates.parse_availability_zone(service.store, value, service.settings.default_schedule_zone)
