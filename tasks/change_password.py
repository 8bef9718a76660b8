"""changePassword: the driver sets the admin password; task_state updating_password while it runs."""
from __future__ import annotations

from compute import instance_actions
from compute.models import FlowRun, Instance, utcnow
from compute.states import TaskState
from tasks.instance_steps import DriverOperation, accepted_since
from tasks.step import Checkpoint, Flow, FlowContext, Step


class ClearPasswordTaskOnRevert(Checkpoint):
    def revert(self, fc: FlowContext) -> None:
        def clear(i: Instance) -> None:
            if i.task_state == TaskState.UPDATING_PASSWORD and not accepted_since(fc, instance_actions.CHANGE_PASSWORD):
                i.task_state = None

        fc.update_instance(clear)


class SetAdminPassword(DriverOperation):
    event = "compute_set_admin_password"
    operation = "set_admin_password"


class FinishPasswordChange(Step):
    """A rerun after a newer password change was accepted finds this one finished (the newer one
    needed the server idle): that one's updating_password and password_set_at are left to it."""

    def execute(self, fc: FlowContext) -> None:
        def finish(i: Instance) -> None:
            if accepted_since(fc, instance_actions.CHANGE_PASSWORD):
                return
            if i.task_state == TaskState.UPDATING_PASSWORD:
                i.task_state = None
            i.password_set_at = utcnow()

        fc.update_instance(finish)


class ChangePasswordFlow(Flow):
    name = instance_actions.CHANGE_PASSWORD

    def steps(self, run: FlowRun) -> list[Step]:
        return [ClearPasswordTaskOnRevert(), SetAdminPassword(), FinishPasswordChange()]
