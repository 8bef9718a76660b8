"""What the engine asks of a hypervisor.

Every long operation is started under an ``op_id`` chosen by the caller and then
polled, never waited on: the engine re-enqueues itself between polls, so a worker
slot is never held by a running migration or snapshot. Starting the same ``op_id``
twice must not start a second operation (a redelivered step calls start again).
A real driver keeps the op_id -> job mapping the same way.

A poll that is not done may say when the operation is due (``due_in``): the engine then
wakes the step at that time (and, for a step that shows progress, a bounded number of
times before it) instead of polling. A driver that cannot tell leaves it None and is
polled with exponential backoff (``[engine] poll_interval_seconds``, doubling, up to
``poll_backoff_max_seconds``).
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
    # Seconds from this poll until the operation should be done; None when the driver cannot tell.
    due_in: float | None = None


class HypervisorDriver(Protocol):
    def supports(self, host: Host, operation: str) -> bool: ...

    def spawn(self, op_id: str, host: str, instance: Instance) -> None: ...

    def destroy(self, op_id: str, host: str, instance: Instance) -> None: ...

    def set_admin_password(self, op_id: str, host: str, instance: Instance) -> None: ...

    def inject_network_info(self, op_id: str, host: str, instance: Instance) -> None: ...

    def reset_network(self, op_id: str, host: str, instance: Instance) -> None: ...

    def snapshot(self, op_id: str, host: str, instance: Instance) -> None:
        """Snapshot and upload the server's disk; poll() details carry ``size`` in bytes when done."""

    def delete_snapshot(self, host: str, image_id: str) -> None:
        """Remove a rotated-out backup's data from the image backend (Glance, in Nova); quick."""

    # ---- the guest's power (os-stop/os-start, pause/unpause, suspend/resume) ----------------------
    def power_off(self, op_id: str, host: str, instance: Instance) -> None:
        """Shut the guest down (a clean shutdown, then a hard one); already off is not an error."""

    def power_on(self, op_id: str, host: str, instance: Instance) -> None: ...

    def pause(self, op_id: str, host: str, instance: Instance) -> None:
        """Stop the guest's vCPUs, its memory kept in place."""

    def unpause(self, op_id: str, host: str, instance: Instance) -> None: ...

    def suspend(self, op_id: str, host: str, instance: Instance) -> None:
        """Save the guest's memory to disk and stop it (libvirt managed save)."""

    def resume(self, op_id: str, host: str, instance: Instance) -> None: ...

    # ---- moves between hosts (live and cold migration) ------------------------------------
    def check_can_live_migrate_destination(self, dest: str, instance: Instance, block_migration: bool) -> None:
        """Raise DriverError when ``dest`` cannot take the server; quick, no op id."""

    def check_can_live_migrate_source(self, source: str, dest: str, instance: Instance,
                                      block_migration: bool) -> None:
        """Raise DriverError when the source cannot send the server to ``dest``."""

    def pre_live_migration(self, op_id: str, dest: str, instance: Instance) -> None: ...

    def live_migration(self, op_id: str, source: str, dest: str, instance: Instance,
                       block_migration: bool) -> None:
        """Start the copy; poll() details carry memory_* and disk_* total/processed/remaining bytes."""

    def live_migration_force_complete(self, op_id: str) -> None:
        """Pause the guest so the copy converges now (Nova: libvirt post-copy or pause)."""

    def post_live_migration_at_destination(self, op_id: str, dest: str, instance: Instance) -> None: ...

    def rollback_live_migration_at_destination(self, op_id: str, dest: str, instance: Instance) -> None: ...

    def prep_resize(self, dest: str, instance: Instance) -> None:
        """Raise DriverError when ``dest`` cannot receive a cold migration; quick, no op id."""

    def migrate_disk_and_power_off(self, op_id: str, source: str, dest: str, instance: Instance) -> None: ...

    def finish_migration(self, op_id: str, dest: str, instance: Instance) -> None: ...

    def confirm_migration(self, op_id: str, source: str, instance: Instance) -> None:
        """Destroy what is left on the source after a confirmed cold migration."""

    def finish_revert_migration(self, op_id: str, source: str, dest: str, instance: Instance) -> None: ...

    # ---- polling ------------------------------------------------------------------------------
    def poll(self, op_id: str) -> OperationStatus: ...

    def cancel(self, op_id: str) -> None: ...
