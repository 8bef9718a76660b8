"""unpause: the guest runs again; vm_state active, power_state running (nova ``unpause_instance``).

Steps and their failure handling: tasks/power_steps.py.
"""
from __future__ import annotations

from compute import instance_actions
from compute.models import FlowRun
from compute.states import PowerState, TaskState, VmState
from tasks.power_steps import (
    MarkPowerState,
    PowerChange,
    PowerCheckpoint,
    PowerOperation,
)
from tasks.step import Flow, Step

UNPAUSE = PowerChange(
    action=instance_actions.UNPAUSE, task_state=TaskState.UNPAUSING, event="compute_unpause_instance",
    operation="unpause", vm_state=VmState.ACTIVE, power_state=PowerState.RUNNING,
)


class UnpauseCheckpoint(PowerCheckpoint):
    change = UNPAUSE


class UnpauseGuest(PowerOperation):
    change = UNPAUSE


class MarkUnpaused(MarkPowerState):
    change = UNPAUSE


class UnpauseFlow(Flow):
    name = instance_actions.UNPAUSE

    def steps(self, run: FlowRun) -> list[Step]:
        return [UnpauseCheckpoint(), UnpauseGuest(), MarkUnpaused()]
