"""unlock (nova compute/api.py ``unlock``): done in full before the answer, recorded as action ``unlock``.

Always recorded, locked or not, with its one event ``api_unlock`` in the same MULTI. Whether
the caller may undo a lock the other party holds (owner vs admin) is policy, checked by the
API with :func:`is_expected_locked_by` before this is called.
"""
from __future__ import annotations

from compute.actions.lock import api_event, locker
from compute.context import RequestContext
from compute.instance_actions import UNLOCK
from compute.models import Instance
from compute.service import ComputeService

UNLOCK_EVENT = "api_unlock"


def is_expected_locked_by(ctx: RequestContext, instance: Instance) -> bool:
    """Nova's ``is_expected_locked_by``: not locked, or locked by the caller's side (owner or admin)."""
    return not instance.locked_by or instance.locked_by == locker(ctx, instance)


def unlock(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    event = api_event(service, UNLOCK_EVENT)

    def mutate(inst: Instance) -> None:
        inst.locked = False
        inst.locked_by = None
        inst.locked_reason = None

    return service.start_action(ctx, instance.id, UNLOCK, mutate, run_flow=False,
                                also=lambda pipe: service.store.put_event(ctx.request_id, event, pipe))
