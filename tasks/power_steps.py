"""What the six power flows share: os-stop, os-start, pause, unpause, suspend, resume.

Each is Nova's manager method of the same shape (nova/compute/manager.py ``stop_instance``,
``pause_instance``, ...): the API set a task_state; the host runs one driver operation; then
vm_state, power_state and task_state change together, in one compare-and-set. Each flow is
three steps, all in the one ``compute_<method>_instance`` event:

  <X>Checkpoint   revert: the failure's last word (below)
  <Operation>     DriverOperation, started once under its op id and polled
  Mark<Result>    the new vm_state and power_state, task_state cleared

On a failure, as Nova's decorators do: ``reverts_task_state`` clears the task_state and the
vm_state stays (stop, start, pause, unpause); ``_error_out_instance_on_exception`` puts a
suspend or resume that failed in ERROR with a fault.

Every state write is made only from the task_state this action set, and only while no newer
action of its kind was accepted (a newer one needed the task_state cleared, so it is that
one's): a rerun after a lost commit, or after a delete or os-resetState, writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compute.guards import being_deleted
from compute.models import Instance, utcnow
from compute.states import VmState
from tasks.instance_steps import DriverOperation, accepted_since
from tasks.step import Checkpoint, FlowContext, Step


@dataclass(frozen=True)
class PowerChange:
    """One power action: the task_state the API set and what the server is once it is done."""

    action: str
    task_state: str
    event: str
    operation: str
    vm_state: str
    power_state: int
    error_on_failure: bool = False  # suspend, resume: a failure leaves the server in ERROR

    def still_ours(self, fc: FlowContext, inst: Instance) -> bool:
        """The server still shows this action's task_state, and it is this action's."""
        return (inst.task_state == self.task_state and not being_deleted(inst)
                and not accepted_since(fc, self.action))


class PowerCheckpoint(Checkpoint):
    """On a failure: task_state cleared, and for suspend/resume vm_state ERROR with the fault."""

    change: ClassVar[PowerChange]

    def revert(self, fc: FlowContext) -> None:
        change = self.change
        reason = fc.run.error or f"{change.action} failed"

        def restore(inst: Instance) -> None:
            if not change.still_ours(fc, inst):
                return
            inst.task_state = None
            if change.error_on_failure:
                inst.vm_state = VmState.ERROR
                inst.fault = {"code": 500, "message": reason, "created": utcnow()}

        fc.update_instance(restore)


class PowerOperation(DriverOperation):
    """The hypervisor operation (``power_off``, ``pause``, ...) on the server's host."""

    change: ClassVar[PowerChange]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "change" in vars(cls):
            cls.event = cls.change.event
            cls.operation = cls.change.operation


class MarkPowerState(Step):
    """vm_state, power_state and task_state as Nova's manager saves them when the driver is done."""

    change: ClassVar[PowerChange]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "change" in vars(cls):
            cls.event = cls.change.event

    def execute(self, fc: FlowContext) -> None:
        change = self.change

        def mark(inst: Instance) -> None:
            if not change.still_ours(fc, inst):
                return
            inst.vm_state = change.vm_state
            inst.power_state = change.power_state
            inst.task_state = None

        fc.update_instance(mark)
