"""pause: the guest's vCPUs stop; vm_state paused, power_state paused (nova ``pause_instance``).

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

PAUSE = PowerChange(
    action=instance_actions.PAUSE, task_state=TaskState.PAUSING, event="compute_pause_instance",
    operation="pause", vm_state=VmState.PAUSED, power_state=PowerState.PAUSED,
)


class PauseCheckpoint(PowerCheckpoint):
    change = PAUSE


class PauseGuest(PowerOperation):
    change = PAUSE


class MarkPaused(MarkPowerState):
    change = PAUSE


class PauseFlow(Flow):
    name = instance_actions.PAUSE

    def steps(self, run: FlowRun) -> list[Step]:
        return [PauseCheckpoint(), PauseGuest(), MarkPaused()]
