"""What several flows share about the server itself: driver operations, newer actions, ERROR."""
from __future__ import annotations

from typing import ClassVar

from compute.driver import OperationStatus
from compute.models import Instance, utcnow
from tasks.step import FlowContext, Step, StepFailed, Wait


class DriverOperation(Step):
    """Start ``operation`` under a fixed op id, then poll it until it ends.

    Starting is idempotent on the op id, so a redelivered step never starts a second one.
    The driver call names ``hosts`` and then the server: by default the one host the step
    runs on (the server's, or the source's or destination's with a move's mixin).

    The step is woken when the driver says the operation is due (``FlowContext.wait_for``),
    else with backoff. A step with ``shows_progress`` is also woken to record progress
    (``on_progress``), at most ``[engine] progress_updates`` times per operation.
    """

    operation: ClassVar[str]
    shows_progress: ClassVar[bool] = False

    def hosts(self, fc: FlowContext) -> tuple[str, ...]:
        host = self.runs_on(fc)
        if not host:
            raise StepFailed(f"Instance {fc.run.instance_uuid} has no host")
        return (host,)

    def start(self, fc: FlowContext, op_id: str) -> None:
        getattr(fc.driver, self.operation)(op_id, *self.hosts(fc), fc.instance())

    def before_start(self, fc: FlowContext) -> None:
        """The state change that announces the operation; runs at every poll, so idempotent."""

    def on_progress(self, fc: FlowContext, status: OperationStatus) -> None:
        """Record progress between polls."""

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        """Record the operation's effect; runs again if the commit after it is lost."""

    def execute(self, fc: FlowContext) -> Wait | None:
        self.before_start(fc)
        op_id = fc.op_id(self.operation)
        self.start(fc, op_id)
        status = fc.driver.poll(op_id)
        if not status.done:
            self.on_progress(fc, status)
            return fc.wait_for(status, progress=self.shows_progress)
        if status.error:
            raise StepFailed(status.error)
        self.on_done(fc, status)
        return None

    def revert(self, fc: FlowContext) -> None:
        """Cancel only what still runs: a finished operation stays visible as finished."""
        op_id = fc.op_id(self.operation)
        if not fc.driver.poll(op_id).done:
            fc.driver.cancel(op_id)


def accepted_since(fc: FlowContext, action: str) -> bool:
    """Whether another ``action`` was accepted on this server after this one.

    Accepting it needed the task_state this action set to be cleared first, so a task_state of
    that kind is the newer action's now, not this one's. Exact when read inside the server's
    compare-and-set: an action is recorded in the same MULTI as the state change it makes.
    """
    return any(later.action == action for later in fc.store.actions_newer_than(fc.run.instance_uuid, fc.request_id))


def fail_instance(fc: FlowContext, reason: str) -> None:
    """Put the server in ERROR with a fault, as Nova does when a build or delete fails.

    A server deleted meanwhile (a delete accepted during its build) stays deleted."""
    def mutate(inst: Instance) -> None:
        if inst.deleted:
            return
        inst.vm_state = "error"
        inst.task_state = None
        inst.fault = {"code": 500, "message": reason, "created": utcnow()}

    fc.update_instance(mutate)
