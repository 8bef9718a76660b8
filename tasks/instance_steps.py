"""Steps several flows share: driver operations that are started once and polled."""
from __future__ import annotations

from typing import ClassVar

from compute.driver import OperationStatus
from tasks.flow import FlowContext, Step, StepFailed, Wait


class DriverOperation(Step):
    """Start ``operation`` on the server's host under a fixed op id, then poll until it ends.

    Starting is idempotent on the op id, so a redelivered step never starts a second one.
    """

    operation: ClassVar[str]

    def target_host(self, fc: FlowContext) -> str:
        host = fc.instance().host
        if not host:
            raise StepFailed(f"Instance {fc.run.instance_uuid} has no host")
        return host

    def execute(self, fc: FlowContext) -> Wait | None:
        op_id = fc.op_id(self.operation)
        start = getattr(fc.driver, self.operation)
        start(op_id, self.target_host(fc), fc.instance())
        status = fc.driver.poll(op_id)
        if not status.done:
            return Wait(fc.poll_interval())
        if status.error:
            raise StepFailed(status.error)
        self.on_done(fc, status)
        return None

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        """Record the operation's effect; runs again if the commit after it is lost."""

    def revert(self, fc: FlowContext) -> None:
        fc.driver.cancel(fc.op_id(self.operation))


def accepted_since(fc: FlowContext, action: str) -> bool:
    """Whether another ``action`` was accepted on this server after this one.

    Accepting it needed the task_state this action set to be cleared first, so a task_state of
    that kind is the newer action's now, not this one's. Exact when read inside the server's
    compare-and-set: an action is recorded in the same MULTI as the state change it makes.
    """
    for earlier in fc.store.list_actions(fc.run.instance_uuid):  # newest first
        if earlier.request_id == fc.request_id:
            return False
        if earlier.action == action:
            return True
    return False
