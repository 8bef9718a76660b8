"""os-start: the guest is powered on; vm_state active, power_state running (nova ``start_instance``).

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

START = PowerChange(
    action=instance_actions.START, task_state=TaskState.POWERING_ON, event="compute_start_instance",
    operation="power_on", vm_state=VmState.ACTIVE, power_state=PowerState.RUNNING,
)


class StartCheckpoint(PowerCheckpoint):
    change = START


class PowerOn(PowerOperation):
    change = START


class MarkStarted(MarkPowerState):
    change = START


class StartFlow(Flow):
    name = instance_actions.START

    def steps(self, run: FlowRun) -> list[Step]:
        return [StartCheckpoint(), PowerOn(), MarkStarted()]
