"""The simulated hypervisor fleet: a HypervisorDriver whose operations take simulated time.

Operations and fault rules live in Redis so every worker process sees the same fleet.
A fault rule fails or hangs a named operation, optionally on one host and for a
limited number of times, e.g. ``{"operation": "spawn", "host": "compute-kvm-1",
"mode": "fail", "times": 1, "message": "disk full"}``. Mode ``slow`` makes a started
operation take ``factor`` times its duration. Mode ``stall`` makes the
start call itself block for ``seconds`` (a slow hypervisor API), which is how crash
tests land a kill while a worker is inside a step.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

from compute import errors
from compute.driver import OperationStatus
from compute.models import Host, Instance
from compute.store import Store
from compute.store.fleet_state import FleetReading
from fleet.clock import FleetClock

# Operations only some hypervisor types implement (Nova: resetNetwork was the XenAPI agent's).
_HYPERVISOR_SUPPORT = {"reset_network": {"xen"}}

# How long the operation a start just read or wrote answers the next poll of it without a read.
_STARTED_FRESH_SECONDS = 0.1


class SimulatedFleet:
    def __init__(self, store: Store, duration_scale: float = 1.0) -> None:
        self.store = store
        self.scale = duration_scale
        # This thread's last start: (op id, the op as read or written, clock offset, wall time then,
        # monotonic time then). A step polls right after it starts; that poll is answered from this
        # (as if it had run at that moment) instead of reading the op back, and the clock's offset
        # too meanwhile. Any write to an op drops it.
        self._started = threading.local()
        # This thread's last check that named the host of the check after it (the live migration's
        # destination check, then its source check): (that host, the reading for it, monotonic time).
        self._next_check = threading.local()
        self.clock = FleetClock(store, recent_offset=self._recent_offset, on_advance=self._forget_start)

    # ---- configuration ----------------------------------------------------------------
    def set_durations(self, durations: dict[str, float]) -> None:
        self.store.set_fleet_durations(durations)

    def duration(self, operation: str, size_gb: int = 0) -> float:
        return self._duration(self.store.read_fleet(), operation, size_gb)

    def _duration(self, reading: FleetReading, operation: str, size_gb: int) -> float:
        durations = reading.durations
        base = durations.get(operation, 0.0) + durations.get(f"{operation}_per_gb", 0.0) * size_gb
        return base * (self.scale if reading.time_scale is None else reading.time_scale)

    def time_scale(self) -> float:
        """[fleet] duration_scale, unless an operator set one at runtime for the whole fleet
        (``compute-actions fleet time-scale``): it applies to operations started from then on."""
        runtime = self.store.fleet_time_scale()
        return self.scale if runtime is None else runtime

    def add_fault(self, operation: str, *, host: str | None = None, mode: str = "fail",
                  times: int | None = None, message: str | None = None, seconds: float = 0.0,
                  factor: float = 1.0) -> str:
        rule_id = f"{operation}:{host or '*'}:{mode}"
        rule = {"operation": operation, "host": host, "mode": mode, "seconds": seconds, "factor": factor,
                "message": message or f"Simulated failure of {operation} on {host or 'any host'}"}
        self.store.add_fault_rule(rule_id, rule, times)
        return rule_id

    def clear_faults(self) -> None:
        self.store.clear_fault_rules()

    def fault_budget(self, rule_id: str) -> int | None:
        """How many more times a rule with ``times`` may fire (tests watch it reach 0)."""
        return self.store.fault_budget(rule_id)

    def set_host_state(self, name: str, *, up: bool | None = None, enabled: bool | None = None,
                       disabled_reason: str | None = None) -> Host:
        changes: dict[str, Any] = {}
        if up is not None:
            changes["up"] = up
        if enabled is not None:
            changes["enabled"] = enabled
            changes["disabled_reason"] = None if enabled else disabled_reason
        return self.store.update_host(name, **changes)

    def _matching_fault(self, reading: FleetReading, operation: str, host: str) -> dict[str, Any] | None:
        for rule_id, rule in reading.fault_rules.items():
            if rule["operation"] != operation or rule["host"] not in (None, host):
                continue
            if self.store.spend_fault_budget(rule_id):
                return rule
        return None

    # ---- HypervisorDriver -------------------------------------------------------------
    def supports(self, host: Host, operation: str) -> bool:
        types = _HYPERVISOR_SUPPORT.get(operation)
        return types is None or host.hypervisor_type in types

    def _start(self, op_id: str, operation: str, host: str, size_gb: int = 0,
               details: dict[str, Any] | None = None) -> None:
        # One read for all the start needs; the SET NX below is what makes a start happen once.
        self._started.last = None
        reading = self.store.read_fleet(op_id=op_id, host=host)
        if reading.op is not None:
            self._remember_start(op_id, reading.op, reading.clock_offset, time.time())
            return
        host_rec = reading.host
        if host_rec is None:
            raise errors.DriverError(f"Compute host {host} could not be found.")
        if not self.supports(host_rec, operation):
            raise errors.NotSupportedByDriver(
                f"{operation} is not supported by the {host_rec.hypervisor_type} driver on host {host}")
        if not host_rec.up:
            raise errors.DriverError(f"Compute host {host} is not responding")
        fault = self._matching_fault(reading, operation, host)
        if fault and fault["mode"] == "stall":
            time.sleep(fault["seconds"])
            fault = None
            reading = self.store.read_fleet()  # the clock and settings as they are after the stall
        slowdown = 1.0
        if fault and fault["mode"] == "slow":  # takes ``factor`` times as long, then succeeds
            slowdown, fault = float(fault.get("factor") or 1.0), None
        wall = time.time()
        op = {"operation": operation, "host": host, "started_at": wall + reading.clock_offset,
              "duration": self._duration(reading, operation, size_gb) * slowdown,
              "outcome": fault["mode"] if fault else "ok",
              "message": fault["message"] if fault else None,
              "details": details or {}, "cancelled": False}
        # SET NX: two deliveries racing on one op_id start it once (the loser reads the winner's at its poll).
        if self.store.start_fleet_op(op_id, op):
            self._remember_start(op_id, op, reading.clock_offset, wall)

    def _remember_start(self, op_id: str, op: dict[str, Any], clock_offset: float, wall: float) -> None:
        self._started.last = (op_id, op, clock_offset, wall, time.monotonic())

    def _forget_start(self) -> None:
        self._started.last = None

    def _recent_offset(self) -> float | None:
        """The clock offset this thread's last start read, while fresh (kept for its poll)."""
        last = getattr(self._started, "last", None)
        if last is None or time.monotonic() - last[4] > _STARTED_FRESH_SECONDS:
            return None
        return float(last[2])

    def _just_started(self, op_id: str) -> tuple[dict[str, Any], float, float] | None:
        """The op this thread's last start read or wrote, once, while fresh: (op, clock offset, wall time)."""
        last = getattr(self._started, "last", None)
        self._started.last = None
        if last is None or last[0] != op_id or time.monotonic() - last[4] > _STARTED_FRESH_SECONDS:
            return None
        return last[1], last[2], last[3]

    def spawn(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "spawn", host)

    def destroy(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "destroy", host)

    def set_admin_password(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "set_admin_password", host)

    def inject_network_info(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "inject_network_info", host)

    def reset_network(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "reset_network", host)

    def snapshot(self, op_id: str, host: str, instance: Instance) -> None:
        disk_gb = instance.flavor.disk + instance.flavor.ephemeral
        # A sparse guest image: about 2% of the virtual disk, at least 1 MiB.
        size = max(1 << 20, disk_gb * (1 << 30) // 50)
        self._start(op_id, "snapshot", host, size_gb=disk_gb, details={"size": size})

    def power_off(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "power_off", host)

    def power_on(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "power_on", host)

    def pause(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "pause", host)

    def unpause(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "unpause", host)

    def suspend(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "suspend", host)

    def resume(self, op_id: str, host: str, instance: Instance) -> None:
        self._start(op_id, "resume", host)

    def _check(self, operation: str, host: str, *, next_on: str | None = None) -> None:
        """A synchronous check: fails when the host is unknown or down, or a fault rule says so.

        ``next_on``: the host of the check that follows at once; its record comes in this check's read,
        which answers that check while fresh (``_STARTED_FRESH_SECONDS``), once.
        """
        reading = self._prepared_check(host)
        if reading is None:
            reading = self.store.read_fleet(host=host, settings=False, faults=True, next_host=next_on)
            if next_on is not None and next_on != host:
                self._next_check.last = (next_on, dataclasses.replace(reading, host=reading.next_host),
                                         time.monotonic())
        host_rec = reading.host
        if host_rec is None:
            raise errors.DriverError(f"Compute host {host} could not be found.")
        if not host_rec.up:
            raise errors.DriverError(f"Compute host {host} is not responding")
        fault = self._matching_fault(reading, operation, host)
        if fault and fault["mode"] == "stall":
            time.sleep(fault["seconds"])
        elif fault:
            raise errors.DriverError(fault["message"])

    def _prepared_check(self, host: str) -> FleetReading | None:
        """The reading the check before this one made for ``host``, while fresh; taken once."""
        last = getattr(self._next_check, "last", None)
        self._next_check.last = None
        if last is None or last[0] != host or time.monotonic() - last[2] > _STARTED_FRESH_SECONDS:
            return None
        return last[1]

    def check_can_live_migrate_destination(self, dest: str, instance: Instance, block_migration: bool) -> None:
        """The conductor checks the source next (``check_can_live_migrate_source``, on the server's host)."""
        self._check("check_can_live_migrate_destination", dest, next_on=instance.host)

    def check_can_live_migrate_source(self, source: str, dest: str, instance: Instance,
                                      block_migration: bool) -> None:
        self._check("check_can_live_migrate_source", source)

    def pre_live_migration(self, op_id: str, dest: str, instance: Instance) -> None:
        self._start(op_id, "pre_live_migration", dest)

    def live_migration(self, op_id: str, source: str, dest: str, instance: Instance,
                       block_migration: bool) -> None:
        disk_gb = instance.flavor.disk + instance.flavor.ephemeral if block_migration else 0
        ram_gb = max(1, instance.flavor.ram // 1024)
        details = {"memory_total_bytes": instance.flavor.ram * (1 << 20), "disk_total_bytes": disk_gb * (1 << 30)}
        self._start(op_id, "live_migration", source, size_gb=ram_gb + disk_gb, details=details)

    def live_migration_force_complete(self, op_id: str) -> None:
        self._update_op(op_id, force_complete=True)

    def post_live_migration_at_destination(self, op_id: str, dest: str, instance: Instance) -> None:
        self._start(op_id, "post_live_migration_at_destination", dest)

    def rollback_live_migration_at_destination(self, op_id: str, dest: str, instance: Instance) -> None:
        self._start(op_id, "rollback_live_migration_at_destination", dest)

    def prep_resize(self, dest: str, instance: Instance) -> None:
        self._check("prep_resize", dest)

    def migrate_disk_and_power_off(self, op_id: str, source: str, dest: str, instance: Instance) -> None:
        disk_gb = instance.flavor.disk + instance.flavor.ephemeral
        self._start(op_id, "cold_migration", source, size_gb=disk_gb,
                    details={"disk_total_bytes": disk_gb * (1 << 30)})

    def finish_migration(self, op_id: str, dest: str, instance: Instance) -> None:
        self._start(op_id, "finish_migration", dest)

    def confirm_migration(self, op_id: str, source: str, instance: Instance) -> None:
        self._start(op_id, "confirm_migration", source)

    def finish_revert_migration(self, op_id: str, source: str, dest: str, instance: Instance) -> None:
        self._start(op_id, "finish_revert_migration", source)

    def _update_op(self, op_id: str, **changes: Any) -> None:
        self._started.last = None
        self.store.update_fleet_op(op_id, **changes)

    def delete_snapshot(self, host: str, image_id: str) -> None:
        self._check("delete_snapshot", host)

    def poll(self, op_id: str) -> OperationStatus:
        started = self._just_started(op_id)
        if started is not None:
            op, clock_offset, wall = started
        else:
            reading = self.store.read_fleet(op_id=op_id, settings=False)
            op, clock_offset, wall = reading.op, reading.clock_offset, time.time()
        if op is None:
            return OperationStatus(done=True, error=f"Unknown operation {op_id}")
        if op["cancelled"]:
            return OperationStatus(done=True, error="cancelled", progress=0, details=op["details"])
        forced = op.get("force_complete", False)
        if op["outcome"] == "hang" and not forced:
            return OperationStatus(done=False, progress=0, details=with_progress(op["details"], 0.0))
        elapsed = wall + clock_offset - op["started_at"]
        duration = op["duration"]
        fraction = 1.0 if duration <= 0 or forced else min(1.0, elapsed / duration)
        details = with_progress(op["details"], fraction)
        if fraction < 1.0:
            return OperationStatus(done=False, progress=int(100 * fraction), details=details,
                                   due_in=due_in(duration - elapsed))
        if op["outcome"] == "fail":
            return OperationStatus(done=True, error=op["message"], progress=100, details=details)
        return OperationStatus(done=True, progress=100, details=details)

    def cancel(self, op_id: str) -> None:
        self._update_op(op_id, cancelled=True)

    def operations(self, operation: str) -> list[dict[str, Any]]:
        """Every operation of a kind that was started, with its host (tests assert 'exactly once')."""
        return [op for op in self.store.list_fleet_ops().values() if op["operation"] == operation]

    def operation(self, op_id: str) -> dict[str, Any] | None:
        """One started operation as recorded (tests check a rerun polled the same one)."""
        return self.store.get_fleet_op(op_id)

    def operation_count(self, operation: str) -> int:
        """How many distinct operations of a kind were started (tests assert 'exactly once')."""
        return len(self.operations(operation))


def due_in(remaining: float) -> float:
    """Seconds until an operation ends, rounded up to the millisecond and a millisecond more.

    The duration is already scaled (``duration_scale``) and the clock is wall time plus the
    fleet's offset, so this is wall seconds: a wake-up queued that far ahead finds it done.
    """
    return math.ceil(max(0.0, remaining) * 1000) / 1000 + 0.001


def with_progress(details: dict[str, Any], fraction: float) -> dict[str, Any]:
    """Fill processed/remaining bytes for every ``*_total_bytes`` detail of an operation."""
    filled = dict(details)
    for key, total in details.items():
        if key.endswith("_total_bytes"):
            stem = key[: -len("_total_bytes")]
            processed = int(total * fraction)
            filled[f"{stem}_processed_bytes"] = processed
            filled[f"{stem}_remaining_bytes"] = total - processed
    return filled
