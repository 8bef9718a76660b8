"""resetNetwork, as the seed documents it: only hosts whose driver supports it (xen) do it.

Elsewhere the action ends as failed with the driver's message. Nova removed the API in
23.0.0; ``[api] reset_network_removed`` makes the API answer 410 instead.
"""
from __future__ import annotations

from compute import instance_actions
from compute.models import FlowRun
from tasks.instance_steps import DriverOperation
from tasks.step import Flow, Step


class ResetNetwork(DriverOperation):
    event = "compute_reset_network"
    operation = "reset_network"


class ResetNetworkFlow(Flow):
    name = instance_actions.RESET_NETWORK

    def steps(self, run: FlowRun) -> list[Step]:
        return [ResetNetwork()]
