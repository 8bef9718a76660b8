"""Every flow the engine can run, by the name the service layer stores on the run."""
from __future__ import annotations

from tasks.change_password import ChangePasswordFlow
from tasks.create_backup import CreateBackupFlow
from tasks.create_server import CreateServerFlow
from tasks.delete_server import DeleteServerFlow
from tasks.flow import Flow
from tasks.inject_network_info import InjectNetworkInfoFlow
from tasks.reset_network import ResetNetworkFlow


def all_flows() -> dict[str, Flow]:
    flows: list[Flow] = [
        CreateServerFlow(), DeleteServerFlow(), ChangePasswordFlow(), InjectNetworkInfoFlow(),
        ResetNetworkFlow(), CreateBackupFlow(),
    ]
    return {f.name: f for f in flows}
