"""os-stop: the guest is shut down; vm_state stopped, power_state shutdown (nova ``stop_instance``).

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

STOP = PowerChange(
    action=instance_actions.STOP, task_state=TaskState.POWERING_OFF, event="compute_stop_instance",
    operation="power_off", vm_state=VmState.STOPPED, power_state=PowerState.SHUTDOWN,
)


class StopCheckpoint(PowerCheckpoint):
    change = STOP


class PowerOff(PowerOperation):
    change = STOP


class MarkStopped(MarkPowerState):
    change = STOP


class StopFlow(Flow):
    name = instance_actions.STOP

    def steps(self, run: FlowRun) -> list[Step]:
        return [StopCheckpoint(), PowerOff(), MarkStopped()]
