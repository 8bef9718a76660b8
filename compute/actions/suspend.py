"""suspend (nova compute/api.py ``suspend``): an ACTIVE server's memory is saved to disk.

The flow (tasks/suspend.py) leaves it ``suspended``, power_state suspended.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state, check_launched
from compute.instance_actions import SUSPEND
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

SUSPEND_VM_STATES = (VmState.ACTIVE,)


def suspend(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    """Nova's checks in its order (lock, vm_state, task_state, launched_at: 409); then suspending."""
    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "suspend", vm_states=SUSPEND_VM_STATES)
        check_launched(inst, "suspend")
        inst.task_state = TaskState.SUSPENDING

    return service.start_action(ctx, instance.id, SUSPEND, mutate, known=instance)
