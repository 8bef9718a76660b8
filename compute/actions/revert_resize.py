"""revertResize: move a cold-migrated server back to its source (status REVERT_RESIZE meanwhile)."""
from __future__ import annotations

from compute.context import RequestContext
from compute.instance_actions import REVERT_RESIZE
from compute.migrations import finish_the_move
from compute.models import Instance, Migration
from compute.service import ComputeService
from compute.states import MigrationStatus, TaskState


def revert_resize(service: ComputeService, ctx: RequestContext, instance: Instance) -> Migration:
    """Move the server back to its source; status REVERT_RESIZE while it runs.

    Unlike Nova, a revert whose source compute is down is refused (409) rather than
    destroying the copy on the destination and then failing.
    """
    return finish_the_move(service, ctx, instance, action=REVERT_RESIZE, method="revertResize",
                           new_status=MigrationStatus.REVERTING, new_task_state=TaskState.RESIZE_REVERTING)
