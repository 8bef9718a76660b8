"""injectNetworkInfo: the driver pushes the network configuration into the guest.

Nova records no instance action for it; we do, so that every action is visible.
"""
from __future__ import annotations

from compute import instance_actions
from compute.driver import OperationStatus
from compute.models import FlowRun, Instance, utcnow
from tasks.instance_steps import DriverOperation
from tasks.step import Flow, FlowContext, Step


class InjectNetworkInfo(DriverOperation):
    event = "compute_inject_network_info"
    operation = "inject_network_info"

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        def stamp(i: Instance) -> None:
            i.network_info_injected_at = utcnow()

        fc.update_instance(stamp)


class InjectNetworkInfoFlow(Flow):
    name = instance_actions.INJECT_NETWORK_INFO

    def steps(self, run: FlowRun) -> list[Step]:
        return [InjectNetworkInfo()]
