"""changePassword: an ACTIVE server's admin password, set by its host (task_state updating_password)."""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state
from compute.instance_actions import CHANGE_PASSWORD
from compute.models import Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState


def change_password(service: ComputeService, ctx: RequestContext, instance: Instance, password: str) -> Instance:
    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "changePassword", vm_states=[VmState.ACTIVE])
        inst.task_state = TaskState.UPDATING_PASSWORD

    return service.start_action(ctx, instance.id, CHANGE_PASSWORD, mutate, params={"admin_password": password},
                                known=instance)
