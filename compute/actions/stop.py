"""os-stop (nova compute/api.py ``stop``): an ACTIVE or ERROR server with a host is powered off.

The flow (tasks/stop.py) leaves it ``stopped``, power_state shutdown.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import (
    check_instance_lock,
    check_instance_ready,
    check_instance_state,
    check_launched,
)
from compute.instance_actions import STOP
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

STOP_VM_STATES = (VmState.ACTIVE, VmState.ERROR)


def stop(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    """Nova's checks in its order (lock, host, vm_state, task_state, launched_at: 409); then powering-off."""
    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_ready(inst)
        check_instance_state(inst, "stop", vm_states=STOP_VM_STATES)
        check_launched(inst, "stop")
        inst.task_state = TaskState.POWERING_OFF
        inst.progress = 0

    return service.start_action(ctx, instance.id, STOP, mutate, known=instance)
