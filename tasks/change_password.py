"""changePassword: the driver sets the admin password; task_state updating_password while it runs."""
from __future__ import annotations

from compute.models import FlowRun, Instance, utcnow
from compute.states import TaskState
from tasks.flow import Flow, FlowContext, Step
from tasks.instance_steps import DriverOperation


class ClearPasswordTaskOnRevert(Step):
    def execute(self, fc: FlowContext) -> None:
        return None

    def revert(self, fc: FlowContext) -> None:
        def clear(i: Instance) -> None:
            if i.task_state == TaskState.UPDATING_PASSWORD:
                i.task_state = None

        fc.store.update_instance(fc.run.instance_uuid, clear)


class SetAdminPassword(DriverOperation):
    event = "compute_set_admin_password"
    operation = "set_admin_password"


class FinishPasswordChange(Step):
    def execute(self, fc: FlowContext) -> None:
        def finish(i: Instance) -> None:
            if i.task_state == TaskState.UPDATING_PASSWORD:
                i.task_state = None
            i.password_set_at = utcnow()

        fc.store.update_instance(fc.run.instance_uuid, finish)


class ChangePasswordFlow(Flow):
    name = "change_password"

    def steps(self, run: FlowRun) -> list[Step]:
        return [ClearPasswordTaskOnRevert(), SetAdminPassword(), FinishPasswordChange()]
