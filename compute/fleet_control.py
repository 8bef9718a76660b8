"""Fleet control: fault rules, host liveness and the time scale of the simulated fleet, at runtime.

What ``compute-actions fleet`` and ``/compute-actions/v1/fleet/*`` do (api/views/fleet_control.py).
Everything here is a write to the store's fleet state (compute/store/fleet_state.py), which every
worker's simulator (fleet/simulator.py) reads at each operation it starts and each check it runs,
so a change takes effect on the next step of every action, in every process.

The operations a rule can name are the ones the simulator looks rules up for:

- *operations* are started, then polled until their (simulated) duration has passed. ``fail``:
  the operation ends in error at the end of its duration; ``hang``: it never ends (until an
  admin force-completes or aborts it, or a timeout of the engine gives up); ``slow``: it takes
  ``factor`` times as long, then succeeds.
- *checks* answer at once (the live-migration pre-checks, cold migration's ``prep_resize``,
  deleting a rotated-out backup). Only ``fail`` applies: the check raises the rule's message.

A rule has a budget: ``times`` firings, or every time (None). Rules with the same operation,
host and effect are one rule: adding it again replaces it (and its budget).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from compute import errors
from compute.models import Host
from compute.store import Store

# Started, then polled (fleet/simulator.py SimulatedFleet._start).
OPERATIONS = (
    "spawn", "destroy", "set_admin_password", "inject_network_info", "reset_network", "snapshot",
    "power_off", "power_on", "pause", "unpause", "suspend", "resume",
    "pre_live_migration", "live_migration", "post_live_migration_at_destination",
    "rollback_live_migration_at_destination", "cold_migration", "finish_migration", "confirm_migration",
    "finish_revert_migration",
)
# Answered at once (fleet/simulator.py SimulatedFleet._check).
CHECKS = ("check_can_live_migrate_destination", "check_can_live_migrate_source", "prep_resize", "delete_snapshot")
EFFECTS = ("fail", "hang", "slow")
CHECK_EFFECTS = ("fail",)
MAX_FACTOR = 1_000_000.0
MAX_TIME_SCALE = 1_000_000.0
DEFAULT_SLOW_FACTOR = 10.0


def effects_for(operation: str) -> tuple[str, ...]:
    return CHECK_EFFECTS if operation in CHECKS else EFFECTS


def operation_catalog() -> list[dict[str, Any]]:
    """Every operation a rule may name, what kind it is and which effects apply."""
    return ([{"name": op, "kind": "operation", "effects": list(EFFECTS)} for op in OPERATIONS]
            + [{"name": op, "kind": "check", "effects": list(CHECK_EFFECTS)} for op in CHECKS])


def rule_id(operation: str, host: str | None, effect: str) -> str:
    """The simulator's own id for a rule (fleet/simulator.py SimulatedFleet.add_fault)."""
    return f"{operation}:{host or '*'}:{effect}"


@dataclass(frozen=True)
class FaultRequest:
    operation: str
    effect: str = "fail"
    host: str | None = None
    factor: float | None = None
    times: int | None = None
    message: str | None = None


def add_fault(store: Store, request: FaultRequest) -> dict[str, Any]:
    """Check the request against the fleet, then store the rule; its view comes back."""
    operation, effect, host = request.operation, request.effect, request.host
    if operation not in OPERATIONS + CHECKS:
        raise errors.Invalid(f"Operation {operation} cannot be faulted. "
                             f"Choose one of: {', '.join(OPERATIONS + CHECKS)}.")
    if effect not in effects_for(operation):
        kind = "a check (it answers at once)" if operation in CHECKS else "an operation"
        raise errors.Invalid(f"Effect {effect} does not apply to {operation}, {kind}: "
                             f"choose one of {', '.join(effects_for(operation))}.")
    if host is not None and store.get_host(host) is None:
        raise errors.Invalid(f"Compute host {host} could not be found.")
    factor = request.factor
    if factor is not None and effect != "slow":
        raise errors.Invalid("factor applies only to the slow effect.")
    if effect == "slow":
        factor = DEFAULT_SLOW_FACTOR if factor is None else factor
        if not (math.isfinite(factor) and 0 < factor <= MAX_FACTOR):
            raise errors.Invalid(f"factor must be greater than 0 and at most {MAX_FACTOR:g}.")
    if request.times is not None and request.times < 1:
        raise errors.Invalid("times must be at least 1 (or null: every time).")
    message = request.message or f"Simulated failure of {operation} on {host or 'any host'}"
    new_id = rule_id(operation, host, effect)
    rule = {"operation": operation, "host": host, "mode": effect, "seconds": 0.0,
            "factor": factor if factor is not None else 1.0, "message": message}
    store.add_fault_rule(new_id, rule, request.times)
    return fault_view(store, new_id, rule)


def fault_view(store: Store, rule_id_: str, rule: dict[str, Any]) -> dict[str, Any]:
    effect = rule.get("mode", "fail")
    left = store.fault_budget(rule_id_)
    return {
        "id": rule_id_,
        "operation": rule["operation"],
        "host": rule.get("host"),
        "effect": effect,
        "factor": rule.get("factor", 1.0) if effect == "slow" else None,
        "message": rule.get("message") if effect == "fail" else None,
        "times_left": left,  # None: every time; 0: spent (the rule stays listed until cleared)
    }


def list_faults(store: Store) -> list[dict[str, Any]]:
    return [fault_view(store, rid, rule) for rid, rule in store.fault_rules().items()]


def remove_fault(store: Store, rule_id_: str) -> None:
    if not store.remove_fault_rule(rule_id_):
        raise errors.NotFound(f"Fault rule {rule_id_} could not be found.")


def clear_faults(store: Store) -> int:
    count = len(store.fault_rules())
    store.clear_fault_rules()
    return count


def set_host_up(store: Store, name: str, up: bool) -> Host:
    """A host's service goes down (or comes back): os-services shows it, the scheduler skips it,
    and the simulator refuses to start operations or run checks on it."""
    return store.update_host(name, up=up)  # NotFound when there is no such host


def time_view(store: Store, configured: float) -> dict[str, Any]:
    runtime = store.fleet_time_scale()
    return {
        "scale": configured if runtime is None else runtime,
        "source": "config" if runtime is None else "runtime",
        "configured_scale": configured,
        "clock_offset_seconds": store.fleet_clock_offset(),
    }


def set_time_scale(store: Store, scale: float | None) -> None:
    """Durations of operations started from now on are multiplied by ``scale`` (None: the setting)."""
    if scale is not None and not (math.isfinite(scale) and 0 <= scale <= MAX_TIME_SCALE):
        raise errors.Invalid(f"scale must be between 0 and {MAX_TIME_SCALE:g}.")
    store.set_fleet_time_scale(scale)
