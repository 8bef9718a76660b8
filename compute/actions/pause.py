"""pause (nova compute/api.py ``pause``): an ACTIVE server's guest is paused in memory.

The flow (tasks/pause.py) leaves it ``paused``, power_state paused.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state, check_launched
from compute.instance_actions import PAUSE
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

PAUSE_VM_STATES = (VmState.ACTIVE,)


def pause(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    """Nova's checks in its order (lock, vm_state, task_state, launched_at: 409); then pausing."""
    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "pause", vm_states=PAUSE_VM_STATES)
        check_launched(inst, "pause")
        inst.task_state = TaskState.PAUSING

    return service.start_action(ctx, instance.id, PAUSE, mutate, known=instance)
