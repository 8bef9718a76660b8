"""The checks several actions make before they are accepted (Nova's decorators in compute/api.py).

Each raises the error the API turns into Nova's answer (409 for state and lock, 400 for
bad input). They run inside the server's compare-and-set, so they judge the record that is
written, not one read a moment earlier.
"""
from __future__ import annotations

from collections.abc import Iterable

from compute import errors
from compute.context import RequestContext
from compute.models import Host, Instance
from compute.states import TaskState

SERVICE_UNAVAILABLE = "Service is unavailable at this time."


def check_instance_state(
    inst: Instance,
    method: str,
    vm_states: Iterable[str] | None = None,
    task_states: Iterable[str | None] | None = (None,),
) -> None:
    """Nova's ``@check_instance_state``: vm_state first, then task_state."""
    if vm_states is not None and inst.vm_state not in set(vm_states):
        raise errors.InstanceInvalidState(method, inst.id, "vm_state", inst.vm_state)
    if task_states is not None and inst.task_state not in set(task_states):
        raise errors.InstanceInvalidState(method, inst.id, "task_state", inst.task_state)


def check_instance_lock(ctx: RequestContext, inst: Instance) -> None:
    if inst.locked and not ctx.is_admin:
        raise errors.InstanceIsLocked(inst.id)


def check_instance_host(inst: Instance, method: str) -> None:
    if not inst.host:
        raise errors.InstanceNotReady(f"Cannot '{method}' instance {inst.id}: it has no host")


def check_instance_ready(inst: Instance) -> None:
    """Nova's ``check_instance_host()`` as os-stop and os-start use it: no host is a 409."""
    if not inst.host:
        raise errors.InstanceNotReady(f"Instance {inst.id} is not ready")


def check_launched(inst: Instance, method: str) -> None:
    """Nova's ``must_have_launched``: a server that never finished a build is a 409."""
    if not inst.launched_at:
        raise errors.InstanceInvalidState(method, inst.id, "launched_at", None)


def check_compute_up(host: Host | None) -> None:
    """Nova's ``check_instance_host(check_is_up=True)``: the compute service must be up (409)."""
    if host is None or not host.in_service:
        raise errors.Conflict(SERVICE_UNAVAILABLE)


def being_deleted(inst: Instance) -> bool:
    """A delete was accepted: other flows leave the server (and its claims) to it."""
    return inst.deleted or inst.task_state == TaskState.DELETING
