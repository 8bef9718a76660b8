"""unpause (nova compute/api.py ``unpause``): a PAUSED server runs again.

The flow (tasks/unpause.py) leaves it ``active``, power_state running.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state, check_launched
from compute.instance_actions import UNPAUSE
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

UNPAUSE_VM_STATES = (VmState.PAUSED,)


def unpause(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    """Nova's checks in its order (lock, vm_state, task_state, launched_at: 409); then unpausing."""
    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "unpause", vm_states=UNPAUSE_VM_STATES)
        check_launched(inst, "unpause")
        inst.task_state = TaskState.UNPAUSING

    return service.start_action(ctx, instance.id, UNPAUSE, mutate, known=instance)
