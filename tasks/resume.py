"""resume: the saved guest runs again; vm_state active (Nova's ``old_vm_state``: suspend is only
from ACTIVE), power_state running (nova ``resume_instance``). A failure leaves the server in ERROR.

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

RESUME = PowerChange(
    action=instance_actions.RESUME, task_state=TaskState.RESUMING, event="compute_resume_instance",
    operation="resume", vm_state=VmState.ACTIVE, power_state=PowerState.RUNNING,
    error_on_failure=True,
)


class ResumeCheckpoint(PowerCheckpoint):
    change = RESUME


class ResumeGuest(PowerOperation):
    change = RESUME


class MarkResumed(MarkPowerState):
    change = RESUME


class ResumeFlow(Flow):
    name = instance_actions.RESUME

    def steps(self, run: FlowRun) -> list[Step]:
        return [ResumeCheckpoint(), ResumeGuest(), MarkResumed()]
