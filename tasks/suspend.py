"""suspend: the guest's memory is saved to disk; vm_state suspended, power_state suspended
(nova ``suspend_instance``). A failure leaves the server in ERROR, as in Nova.

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

SUSPEND = PowerChange(
    action=instance_actions.SUSPEND, task_state=TaskState.SUSPENDING, event="compute_suspend_instance",
    operation="suspend", vm_state=VmState.SUSPENDED, power_state=PowerState.SUSPENDED,
    error_on_failure=True,
)


class SuspendCheckpoint(PowerCheckpoint):
    change = SUSPEND


class SuspendGuest(PowerOperation):
    change = SUSPEND


class MarkSuspended(MarkPowerState):
    change = SUSPEND


class SuspendFlow(Flow):
    name = instance_actions.SUSPEND

    def steps(self, run: FlowRun) -> list[Step]:
        return [SuspendCheckpoint(), SuspendGuest(), MarkSuspended()]
