"""confirmResize: finish a cold move (the API answers 204); the flow cleans up the source."""
from __future__ import annotations

from compute.context import RequestContext
from compute.instance_actions import CONFIRM_RESIZE
from compute.migrations import finish_the_move
from compute.models import Instance, Migration
from compute.service import ComputeService
from compute.states import MigrationStatus


def confirm_resize(service: ComputeService, ctx: RequestContext, instance: Instance) -> Migration:
    """Finish the move: the source is cleaned up and its claim released (the API answers 204).

    No task_state is set (Nova): the status stays VERIFY_RESIZE until it is done; the
    migration going finished -> confirming in the server's MULTI is what makes a second
    confirm, a revert, or another periodic process lose.
    """
    return finish_the_move(service, ctx, instance, action=CONFIRM_RESIZE, method="confirmResize",
                           new_status=MigrationStatus.CONFIRMING, new_task_state=None)
