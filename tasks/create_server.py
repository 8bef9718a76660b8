"""Build a server: schedule and claim, spawn on the chosen host, mark it ACTIVE.

Mirrors nova/conductor/manager.py ``schedule_and_build_instances`` and
nova/compute/manager.py ``_build_and_run_instance``. A failure leaves the server in
ERROR with a fault, no host and no claim, the reason on the ``create`` action.
"""
from __future__ import annotations

from compute import instance_actions, scheduler
from compute.models import FlowRun, Instance, utcnow
from compute.states import PowerState, TaskState, VmState
from tasks.instance_steps import DriverOperation, fail_instance
from tasks.step import Checkpoint, Flow, FlowContext, InConductor, Step, Wait


class BuildCheckpoint(Checkpoint):
    """On revert the server goes to ERROR (Octavia's InstanceToErrorOnRevert)."""

    def revert(self, fc: FlowContext) -> None:
        fail_instance(fc, fc.run.error or "Build failed")


class ScheduleAndClaim(InConductor, Step):
    event = "conductor_schedule_and_build_instances"

    def execute(self, fc: FlowContext) -> None:
        inst = fc.instance()
        already = fc.store.hosts_claimed_by(inst.id)
        if already:
            chosen = min(already)
        else:
            selection = scheduler.select_hosts(fc.store, inst, inst.flavor, requested_host=inst.requested_host)
            chosen = scheduler.claim_first_fit(fc.store, inst.id, inst.flavor, selection).name

        def place(i: Instance) -> None:
            i.host = i.node = chosen
            i.task_state = TaskState.SPAWNING

        fc.store.update_instance(inst.id, place)

    def revert(self, fc: FlowContext) -> None:
        for host in fc.store.hosts_claimed_by(fc.run.instance_uuid):
            fc.store.release_claim(host, fc.run.instance_uuid)

        def unplace(i: Instance) -> None:
            i.host = i.node = None

        fc.store.update_instance(fc.run.instance_uuid, unplace)


class SpawnOnHost(DriverOperation):
    event = "compute_build_and_run_instance"
    operation = "spawn"


class MarkActive(Step):
    """Only from vm_state building, which no server returns to: a rerun after a crash finds the
    server active, perhaps busy with a later action, and leaves its state alone."""

    def execute(self, fc: FlowContext) -> Wait | None:
        def activate(i: Instance) -> None:
            if i.vm_state != VmState.BUILDING:
                return
            i.vm_state = VmState.ACTIVE
            i.task_state = None
            i.power_state = PowerState.RUNNING
            i.progress = 0
            i.launched_at = i.launched_at or utcnow()

        fc.store.update_instance(fc.run.instance_uuid, activate)
        return None


class CreateServerFlow(Flow):
    name = instance_actions.CREATE

    def steps(self, run: FlowRun) -> list[Step]:
        return [BuildCheckpoint(), ScheduleAndClaim(), SpawnOnHost(), MarkActive()]
