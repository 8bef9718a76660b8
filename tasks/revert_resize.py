"""revertResize (compute manager ``revert_resize`` on the destination, then
``finish_revert_resize`` on the source): the server goes back where it came from.

  step                         event                          task_state        migration
  RevertCheckpoint             -                              resize_reverting  reverting (set by the API)
  DestroyDestinationCopy       compute_revert_resize
  ReleaseDestinationClaim      (same event)
  FinishRevertOnSource         compute_finish_revert_resize
  MarkReverted                 (same event)                   None              reverted

Powered on at the source unless it was stopped before the move (its power state on the
destination says so: nothing can start or stop a server in VERIFY_RESIZE). A failure
before the destination copy is destroyed leaves the server in VERIFY_RESIZE with the
migration finished again; after that, the source is the only copy left, so the server
ends in ERROR there with only its source claim (Nova: ERROR in both cases).
"""
from __future__ import annotations

import logging

from compute import errors, instance_actions
from compute.guards import being_deleted
from compute.models import FlowRun, Instance, Migration, utcnow
from compute.states import MigrationStatus, PowerState, TaskState, VmState
from tasks.instance_steps import DriverOperation
from tasks.moves import (
    OnDestination,
    OnSource,
    change_server_and_migration,
    migration_of,
    move_task,
    op_succeeded,
)
from tasks.step import Checkpoint, Flow, FlowContext, Step

LOG = logging.getLogger(__name__)


class RevertCheckpoint(Checkpoint):
    def revert(self, fc: FlowContext) -> None:
        if op_succeeded(fc, DestroyDestinationCopy.operation):
            self._error_on_source(fc)
            return

        def back_to_verify_resize(inst: Instance, migration: Migration) -> None:
            if inst.task_state == TaskState.RESIZE_REVERTING:
                inst.task_state = None
            if migration.status == MigrationStatus.REVERTING:
                migration.status = MigrationStatus.FINISHED

        change_server_and_migration(fc, back_to_verify_resize)

    @staticmethod
    def _error_on_source(fc: FlowContext) -> None:
        migration = migration_of(fc)
        inst_id = fc.run.instance_uuid
        if migration.dest_compute:
            fc.store.release_claim(migration.dest_compute, inst_id)
        if migration.source_compute:
            try:  # held since the migration began; a no-op unless something dropped it
                fc.store.claim_resources(migration.source_compute, inst_id, fc.instance().flavor)
            except errors.ComputeError as exc:
                LOG.warning("could not claim %s back on %s: %s", inst_id, migration.source_compute, exc.message)

        def error(inst: Instance, m: Migration) -> None:
            if not being_deleted(inst):
                inst.host, inst.node = m.source_compute, m.source_node
                inst.vm_state, inst.task_state = VmState.ERROR, None
                inst.fault = {"code": 500, "created": utcnow(),
                              "message": fc.run.error or "Reverting the resize failed"}
            m.status = MigrationStatus.ERROR

        change_server_and_migration(fc, error)


class DestroyDestinationCopy(OnDestination, DriverOperation):
    event = "compute_revert_resize"
    operation = "destroy"


class ReleaseDestinationClaim(OnDestination, Step):
    event = "compute_revert_resize"

    def execute(self, fc: FlowContext) -> None:
        dest = migration_of(fc).dest_compute
        if dest:
            fc.store.release_claim(dest, fc.run.instance_uuid)


class FinishRevertOnSource(OnSource, DriverOperation):
    """The server's host is the source again; the driver powers it on there."""

    event = "compute_finish_revert_resize"
    operation = "finish_revert_migration"

    def before_start(self, fc: FlowContext) -> None:
        def home(inst: Instance, migration: Migration) -> None:
            if not being_deleted(inst):
                inst.host, inst.node = migration.source_compute, migration.source_node

        if fc.instance().host != migration_of(fc).source_compute:
            change_server_and_migration(fc, home)

    def hosts(self, fc: FlowContext) -> tuple[str, ...]:
        migration = migration_of(fc)
        return migration.source_compute or "", migration.dest_compute or ""


class MarkReverted(OnSource, Step):
    """Only from reverting: a rerun after a crash finds the migration reverted, and the server
    perhaps in a newer move, whose task_state, vm_state and claims are not this one's."""

    event = "compute_finish_revert_resize"

    def execute(self, fc: FlowContext) -> None:
        def reverted(inst: Instance, migration: Migration) -> None:
            if migration.status != MigrationStatus.REVERTING:
                return
            move_task(inst, (TaskState.RESIZE_REVERTING,), None)
            if inst.vm_state == VmState.RESIZED:
                inst.vm_state = VmState.STOPPED if inst.power_state == PowerState.SHUTDOWN else VmState.ACTIVE
            inst.progress = 0
            migration.status = MigrationStatus.REVERTED

        change_server_and_migration(fc, reverted)


class RevertResizeFlow(Flow):
    name = instance_actions.REVERT_RESIZE

    def steps(self, run: FlowRun) -> list[Step]:
        return [RevertCheckpoint(), DestroyDestinationCopy(), ReleaseDestinationClaim(), FinishRevertOnSource(),
                MarkReverted()]
