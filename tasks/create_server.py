"""Build a server: schedule and claim, spawn on the chosen host, mark it ACTIVE.

Mirrors nova/conductor/manager.py ``schedule_and_build_instances`` and
nova/compute/manager.py ``_build_and_run_instance``. A failure leaves the server in
ERROR with a fault, no host and no claim, the reason on the ``create`` action.

Events as Nova records them: a build is one ``compute__do_build_and_run_instance`` event on
the compute host (``@wrap_instance_event`` on ``_do_build_and_run_instance``); the conductor
records none, except when scheduling fails: then an Error ``conductor_schedule_and_build_instances``
on the conductor's host (``_create_instance_action_for_cell0``), with every host's reason.
"""
from __future__ import annotations

import traceback

from compute import errors, instance_actions, scheduler, telemetry
from compute.models import ActionEvent, FlowRun, Instance, utcnow
from compute.states import PowerState, TaskState, VmState
from tasks.instance_steps import DriverOperation, fail_instance
from tasks.step import (
    Checkpoint,
    Flow,
    FlowContext,
    InConductor,
    Step,
    Wait,
    failure_details,
    step_event_key,
)

BUILD_EVENT = "compute__do_build_and_run_instance"
SCHEDULING_FAILED_EVENT = "conductor_schedule_and_build_instances"


class BuildCheckpoint(Checkpoint):
    """On revert the server goes to ERROR (Octavia's InstanceToErrorOnRevert)."""

    def revert(self, fc: FlowContext) -> None:
        fail_instance(fc, fc.run.error or "Build failed")


class ScheduleAndClaim(InConductor, Step):
    """No event of its own (Nova's conductor records none for a build), unless it fails."""

    def execute(self, fc: FlowContext) -> None:
        inst = fc.instance()
        already = fc.store.hosts_claimed_by(inst.id)
        if already:
            chosen = min(already)
        else:
            try:
                selection = scheduler.select_hosts(fc.store, inst, inst.flavor, requested_host=inst.requested_host)
                telemetry.count_rejections(selection.rejections)
                chosen = scheduler.claim_first_fit(fc.store, inst.id, inst.flavor, selection).name
            except errors.NoValidHost as exc:
                record_scheduling_failure(fc, exc)
                raise

        def place(i: Instance) -> None:
            i.host = i.node = chosen
            i.task_state = TaskState.SPAWNING

        fc.update_instance(place)

    def revert(self, fc: FlowContext) -> None:
        for host in fc.store.hosts_claimed_by(fc.run.instance_uuid):
            fc.store.release_claim(host, fc.run.instance_uuid)

        def unplace(i: Instance) -> None:
            i.host = i.node = None

        fc.update_instance(unplace)


def record_scheduling_failure(fc: FlowContext, exc: errors.NoValidHost) -> None:
    """Nova's ``_create_instance_action_for_cell0``: the conductor's event, started and failed at once
    (written whole, so a rerun after a crash writes the same event again, never an open one)."""
    now = utcnow()
    fc.record_events(ActionEvent(
        key=step_event_key(f"{fc.run.cursor:03d}", SCHEDULING_FAILED_EVENT), event=SCHEDULING_FAILED_EVENT,
        host=fc.settings.host, start_time=now, finish_time=now, result="Error",
        traceback=traceback.format_exc(), details=failure_details(exc)), action_update={"message": "Error"})


class SpawnOnHost(DriverOperation):
    event = BUILD_EVENT
    operation = "spawn"


class MarkActive(Step):
    """Only from vm_state building, which no server returns to: a rerun after a crash finds the
    server active, perhaps busy with a later action, and leaves its state alone.

    Part of the build's event, which closes once the server is ACTIVE, as Nova's does."""

    event = BUILD_EVENT

    def execute(self, fc: FlowContext) -> Wait | None:
        def activate(i: Instance) -> None:
            if i.vm_state != VmState.BUILDING:
                return
            i.vm_state = VmState.ACTIVE
            i.task_state = None
            i.power_state = PowerState.RUNNING
            i.progress = 0
            i.launched_at = i.launched_at or utcnow()

        fc.update_instance(activate)
        return None


class CreateServerFlow(Flow):
    name = instance_actions.CREATE

    def steps(self, run: FlowRun) -> list[Step]:
        return [BuildCheckpoint(), ScheduleAndClaim(), SpawnOnHost(), MarkActive()]
