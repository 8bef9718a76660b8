"""resume (nova compute/api.py ``resume``): a SUSPENDED server runs again.

The flow (tasks/resume.py) leaves it ``active``, power_state running.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state, check_launched
from compute.instance_actions import RESUME
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

RESUME_VM_STATES = (VmState.SUSPENDED,)


def resume(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    """Nova's checks in its order (lock, vm_state, task_state, launched_at: 409); then resuming."""
    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "resume", vm_states=RESUME_VM_STATES)
        check_launched(inst, "resume")
        inst.task_state = TaskState.RESUMING

    return service.start_action(ctx, instance.id, RESUME, mutate, known=instance)
