"""What the engine asks of a hypervisor.

Every long operation is started under an ``op_id`` chosen by the caller and then
polled, never waited on: the engine re-enqueues itself between polls, so a worker
slot is never held by a running migration or snapshot. Starting the same ``op_id``
twice must not start a second operation (a redelivered step calls start again).
A real driver keeps the op_id -> job mapping the same way.
"""
from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from compute.models import Host, Instance


class OperationStatus(BaseModel):
    done: bool
    error: str | None = None
    progress: int = 0
    details: dict[str, Any] = Field(default_factory=dict)


class HypervisorDriver(Protocol):
    def supports(self, host: Host, operation: str) -> bool: ...

    def spawn(self, op_id: str, host: str, instance: Instance) -> None: ...

    def destroy(self, op_id: str, host: str, instance: Instance) -> None: ...

    def set_admin_password(self, op_id: str, host: str, instance: Instance) -> None: ...

    def inject_network_info(self, op_id: str, host: str, instance: Instance) -> None: ...

    def reset_network(self, op_id: str, host: str, instance: Instance) -> None: ...

    def snapshot(self, op_id: str, host: str, instance: Instance) -> None:
        """Snapshot and upload the server's disk; poll() details carry ``size`` in bytes when done."""

    def poll(self, op_id: str) -> OperationStatus: ...

    def cancel(self, op_id: str) -> None: ...
