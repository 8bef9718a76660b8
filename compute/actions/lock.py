"""lock (nova compute/api.py ``lock``): done in full before the answer, recorded as action ``lock``.

No state check and no 409: any server may be locked. A lock by the server's own project is
``locked_by = "owner"``, by anyone else (an admin) ``"admin"``. The owner locking a server
that is already locked changes nothing and records nothing, as in Nova; an admin re-locking
takes the lock over (and keeps the reason unless a new one is given). The action's one event,
``api_lock``, is written in the same MULTI as the lock, with this API service's host.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.instance_actions import LOCK
from compute.models import ActionEvent, Instance
from compute.service import ComputeService

LOCK_EVENT = "api_lock"


class _AlreadyLockedByOwner(Exception):
    """Raised inside the compare-and-set to write nothing at all."""


def locker(ctx: RequestContext, instance: Instance) -> str:
    """``owner`` when the caller is of the server's project, else ``admin`` (Nova's ``is_owner``)."""
    return "owner" if instance.project_id == ctx.project_id else "admin"


def api_event(service: ComputeService, name: str) -> ActionEvent:
    """The finished event of an action done by the API itself (Nova's ``wrap_instance_event(prefix='api')``)."""
    event = ActionEvent(key=f"000:{name}", event=name, host=service.settings.host, result="Success")
    event.finish_time = event.start_time
    return event


def lock(service: ComputeService, ctx: RequestContext, instance: Instance, reason: str | None = None) -> Instance:
    """Lock the server; returns it as it is now (unchanged when its owner had already locked it)."""
    event = api_event(service, LOCK_EVENT)

    def mutate(inst: Instance) -> None:
        by = locker(ctx, inst)
        if inst.locked and by == "owner":
            raise _AlreadyLockedByOwner
        inst.locked = True
        inst.locked_by = by
        if reason:
            inst.locked_reason = reason

    try:
        return service.start_action(ctx, instance.id, LOCK, mutate, run_flow=False,
                                    also=lambda pipe: service.store.put_event(ctx.request_id, event, pipe))
    except _AlreadyLockedByOwner:
        return service.get_instance(ctx, instance.id)
