"""Delete a server: destroy it on its host, give back its claims, mark it deleted."""
from __future__ import annotations

from compute import instance_actions
from compute.actions.delete_server import HOSTED
from compute.models import FlowRun, Instance, utcnow
from compute.states import PowerState, VmState
from tasks.instance_steps import DriverOperation, fail_instance
from tasks.step import Checkpoint, Flow, FlowContext, Step, Wait


class DeleteCheckpoint(Checkpoint):
    def revert(self, fc: FlowContext) -> None:
        fail_instance(fc, fc.run.error or "Delete failed")


class TerminateOnHost(DriverOperation):
    event = "compute_terminate_instance"
    operation = "destroy"

    def execute(self, fc: FlowContext) -> Wait | None:
        if not fc.instance().host:
            return None
        return super().execute(fc)


class ReleaseClaims(Step):
    def execute(self, fc: FlowContext) -> None:
        for host in fc.store.hosts_claimed_by(fc.run.instance_uuid):
            fc.store.release_claim(host, fc.run.instance_uuid)


class MarkDeleted(Step):
    def execute(self, fc: FlowContext) -> None:
        def delete(i: Instance) -> None:
            now = utcnow()
            i.vm_state = VmState.DELETED
            i.task_state = None
            i.power_state = PowerState.NOSTATE
            i.deleted, i.deleted_at, i.terminated_at = True, now, now

        fc.update_instance(delete)


class DeleteServerFlow(Flow):
    name = instance_actions.DELETE

    def steps(self, run: FlowRun) -> list[Step]:
        """A server that never got a host is deleted locally, as Nova's API does: no compute event."""
        if not run.params.get(HOSTED, True):
            return [DeleteCheckpoint(), ReleaseClaims(), MarkDeleted()]
        return [DeleteCheckpoint(), TerminateOnHost(), ReleaseClaims(), MarkDeleted()]
