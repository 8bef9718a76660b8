"""injectNetworkInfo: the host re-writes the server's network configuration."""
from __future__ import annotations

from compute.context import RequestContext
from compute.guards import check_instance_host, check_instance_lock
from compute.instance_actions import INJECT_NETWORK_INFO
from compute.models import Instance
from compute.service import ComputeService


def inject_network_info(service: ComputeService, ctx: RequestContext, instance: Instance) -> Instance:
    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_host(inst, "inject_network_info")

    return service.start_action(ctx, instance.id, INJECT_NETWORK_INFO, guard, known=instance)
