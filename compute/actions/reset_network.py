"""resetNetwork: the host resets the server's networking (only some hypervisors can)."""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import check_instance_host, check_instance_lock
from compute.instance_actions import RESET_NETWORK
from compute.models import Instance
from compute.service import ComputeService


def reset_network(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_host(inst, "reset_network")

    return service.start_action(ctx, instance.id, RESET_NETWORK, guard, known=instance)
