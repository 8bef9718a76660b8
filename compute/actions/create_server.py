"""POST /servers: the server record (BUILD/scheduling), its create action and its flow, in one MULTI.

Quotas as Nova checks them: metadata items first (403 ``Maximum number of metadata items
exceeds <n>``), then instances, cores and ram, checked by the store under the WATCH of the
project's usage and written in the record's MULTI (403 ``Quota exceeded for instances: ...``).
"""
from __future__ import annotations

from compute import errors, quotas
from compute.context import RequestContext
from compute.instance_actions import CREATE
from compute.models import FlowRun, Instance, InstanceAction
from compute.service import ComputeService
from compute.states import TaskState, VmState


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
    try:
        flavor = service.get_flavor(flavor_id)
    except errors.NotFound as exc:
        raise errors.Invalid(exc.message) from None
    if image_id is not None:
        try:
            service.get_image(ctx, image_id)
        except errors.NotFound:
            raise errors.Invalid("Can not find requested image") from None
    zone, requested_host = parse_availability_zone(service, availability_zone)
    options = service.settings.quota
    quotas.check_server_metadata(options, service.store.quota_snapshot(ctx.project_id or "", ctx.user_id), metadata)
    inst = Instance(
        name=name, project_id=ctx.project_id or "", user_id=ctx.user_id or "", flavor=flavor,
        image_id=image_id, availability_zone=zone, requested_host=requested_host,
        vm_state=VmState.BUILDING, task_state=TaskState.SCHEDULING, metadata=metadata or {},
        access_ip_v4=access_ip_v4, access_ip_v6=access_ip_v6,
    )
    action = InstanceAction(request_id=ctx.request_id, action=CREATE, instance_uuid=inst.id,
                            user_id=ctx.user_id, project_id=ctx.project_id)
    run = FlowRun(request_id=ctx.request_id, flow=CREATE, instance_uuid=inst.id)
    service.store.create_instance(inst, action, run, due_in=service.settings.engine.start_grace_seconds,
                                  check_quota=quotas.instance_create_check(options, flavor))
    try:
        service.enqueuer.enqueue(ctx.request_id, 0)
    except errors.QueueUnavailable:
        service.store.delete_action(action)
        service.store.purge_instance_record(inst.id)
        raise
    return inst


def parse_availability_zone(service: ComputeService, value: str | None) -> tuple[str | None, str | None]:
    """``zone``, ``zone:host``, ``zone:host:node`` or ``zone::node`` -> (pinned zone, forced host).

    Hosts' zones come from their aggregates; compute/aggregates.py has Nova's rules. The host
    part is checked by policy upstream.
    """
    from compute import aggregates

    return aggregates.parse_availability_zone(service.store, value, service.settings.default_schedule_zone)
