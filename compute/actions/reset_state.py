"""os-resetState: the one action written in full before the 202, as in Nova (no flow)."""
from __future__ import annotations

from compute.context import RequestContext
from compute.instance_actions import RESET_STATE
from compute.models import Instance
from compute.service import ComputeService
from compute.states import VmState


def reset_state(service: ComputeService, ctx: RequestContext, instance: Instance, state: str) -> Instance:
    def mutate(inst: Instance) -> None:
        inst.vm_state = VmState.ACTIVE if state == "active" else VmState.ERROR
        inst.task_state = None

    return service.start_action(ctx, instance.id, RESET_STATE, mutate, run_flow=False)
