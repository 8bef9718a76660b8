"""os-start (nova compute/api.py ``start``): a STOPPED server with a host is powered on.

The flow (tasks/start.py) leaves it ``active``, power_state running.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import (
    check_instance_lock,
    check_instance_ready,
    check_instance_state,
    check_launched,
)
from compute.instance_actions import START
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

START_VM_STATES = (VmState.STOPPED,)


def start(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    """Nova's checks in its order (lock, host, vm_state, task_state, launched_at: 409); then powering-on."""
    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_ready(inst)
        check_instance_state(inst, "start", vm_states=START_VM_STATES)
        check_launched(inst, "start")
        inst.task_state = TaskState.POWERING_ON

    return service.start_action(ctx, instance.id, START, mutate, known=instance)
