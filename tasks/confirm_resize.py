"""confirmResize (compute manager ``confirm_resize`` on the source): the move becomes final.

  step                       event                    migration
  ConfirmCheckpoint          -                        confirming (set by the API)
  DestroySourceCopy          compute_confirm_resize
  ReleaseSourceClaim         (same event)
  MarkConfirmed              (same event)             confirmed; vm_state active, or stopped

No task_state is set: the status stays VERIFY_RESIZE until the end, as in Nova. A failure
before the source copy is gone leaves the server in VERIFY_RESIZE with the migration
finished again, so confirming can be retried (by hand or by the periodic confirmer).
After it is gone the migration ends error (Nova's outcome for every confirm failure).
"""
from __future__ import annotations

from compute import instance_actions
from compute.guards import being_deleted
from compute.models import FlowRun, Instance, Migration
from compute.states import MigrationStatus, PowerState, VmState
from tasks.instance_steps import DriverOperation
from tasks.moves import (
    OnSource,
    change_server_and_migration,
    migration_of,
    op_succeeded,
)
from tasks.step import Checkpoint, Flow, FlowContext, Step

EVENT = "compute_confirm_resize"


class ConfirmCheckpoint(Checkpoint):
    def revert(self, fc: FlowContext) -> None:
        source_gone = op_succeeded(fc, DestroySourceCopy.operation)

        def reopen(inst: Instance, migration: Migration) -> None:
            if migration.status == MigrationStatus.CONFIRMING:
                migration.status = MigrationStatus.ERROR if source_gone else MigrationStatus.FINISHED

        change_server_and_migration(fc, reopen)


class DestroySourceCopy(OnSource, DriverOperation):
    """Driver ``confirm_migration``: what is left of the server on the source is deleted."""

    event = EVENT
    operation = "confirm_migration"


class ReleaseSourceClaim(OnSource, Step):
    event = EVENT

    def execute(self, fc: FlowContext) -> None:
        source = migration_of(fc).source_compute
        if source and source != fc.instance().host:
            fc.store.release_claim(source, fc.run.instance_uuid)


class MarkConfirmed(OnSource, Step):
    """Nova: vm_state stopped if the server is shut down, else active.

    Only from confirming: a rerun after a crash finds the migration confirmed, and the server
    perhaps in VERIFY_RESIZE again for a newer move, which is not this one's to finish.
    """

    event = EVENT

    def execute(self, fc: FlowContext) -> None:
        def confirmed(inst: Instance, migration: Migration) -> None:
            if migration.status != MigrationStatus.CONFIRMING:
                return
            if inst.vm_state == VmState.RESIZED and not being_deleted(inst):
                inst.vm_state = VmState.STOPPED if inst.power_state == PowerState.SHUTDOWN else VmState.ACTIVE
            migration.status = MigrationStatus.CONFIRMED

        change_server_and_migration(fc, confirmed)


class ConfirmResizeFlow(Flow):
    name = instance_actions.CONFIRM_RESIZE

    def steps(self, run: FlowRun) -> list[Step]:
        return [ConfirmCheckpoint(), DestroySourceCopy(), ReleaseSourceClaim(), MarkConfirmed()]
