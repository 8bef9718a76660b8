"""DELETE /servers/{id}: task_state deleting from any state; the flow frees the host."""
from __future__ import annotations

from compute import errors
from compute.context import RequestContext
from compute.guards import check_instance_lock
from compute.instance_actions import DELETE
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

# The flow's parameter: False when the server has no host and is not being built (Nova's local delete).
HOSTED = "hosted"


def delete_server(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance | None:
    """Idempotent: deleting a server that is already being deleted records nothing new."""
    if instance.task_state == TaskState.DELETING:
        return None

    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        if inst.task_state == TaskState.DELETING:
            raise errors.Conflict(f"Instance {inst.id} is already being deleted")
        inst.task_state = TaskState.DELETING

    hosted = bool(instance.host) or instance.vm_state == VmState.BUILDING
    return service.start_action(ctx, instance.id, DELETE, mutate, params={HOSTED: hosted}, known=instance)
