"""The simulated fleet's shared state (fleet/): clock, durations, fault rules, operations.

It lives in the store so that every worker process sees the same simulated hypervisors.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from compute.models import Host
from compute.store.base import StoreBase


@dataclass(frozen=True)
class FleetReading:
    """What one simulated operation needs of the fleet's state, read in one round trip (``read_fleet``)."""

    clock_offset: float
    durations: dict[str, float] = field(default_factory=dict)
    time_scale: float | None = None  # the runtime scale (``fleet_time_scale``)
    fault_rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # in rule id order
    op: dict[str, Any] | None = None  # the operation asked for, if it was started
    host: Host | None = None  # the host asked for, as stored: no zone, no liveness (``get_host`` adds them)
    next_host: Host | None = None  # ``next_host``'s record, read with ``host``'s for the call that follows


class FleetState(StoreBase):
    def read_fleet(self, *, op_id: str | None = None, host: str | None = None,
                   settings: bool = True, faults: bool | None = None, next_host: str | None = None) -> FleetReading:
        """The clock offset; with ``settings`` the durations, runtime scale and fault rules (``faults``:
        the rules alone, or not, whatever ``settings`` says); and the operation ``op_id`` and the stored
        records of ``host`` and ``next_host`` when named: one pipelined read, its strings in one MGET
        (the values of one moment only as far as a pipeline's are; nothing here needs more)."""
        faults = settings if faults is None else faults
        strings = [self._keys.fleet_clock_offset()]
        if settings:
            strings.append(self._keys.fleet_time_scale())
        if op_id is not None:
            strings.append(self._keys.fleet_op(op_id))
        if host is not None:
            strings.append(self._keys.host(host))
        if next_host is not None:
            strings.append(self._keys.host(next_host))
        pipe = self._client.pipeline(transaction=False)
        pipe.mget(strings)
        if settings:
            pipe.hgetall(self._keys.fleet_durations())
        if faults:
            pipe.hgetall(self._keys.fleet_faults())
        replies = pipe.execute()
        found, hashes = iter(replies[0]), iter(replies[1:])
        offset = float(next(found) or 0.0)
        durations: dict[str, float] = {}
        scale = None
        if settings:
            raw_scale = next(found)
            scale = None if raw_scale is None else float(raw_scale)
            durations = {name: float(v) for name, v in next(hashes).items()}
        rules: dict[str, dict[str, Any]] = {}
        if faults:
            raw_rules = next(hashes)
            rules = {rule_id: json.loads(raw_rules[rule_id]) for rule_id in sorted(raw_rules)}
        op = host_rec = next_rec = None
        if op_id is not None:
            raw_op = next(found)
            op = None if raw_op is None else json.loads(raw_op)
        if host is not None:
            raw_host = next(found)
            host_rec = None if raw_host is None else Host.model_validate_json(raw_host)
        if next_host is not None:
            raw_next = next(found)
            next_rec = None if raw_next is None else Host.model_validate_json(raw_next)
        return FleetReading(offset, durations, scale, rules, op, host_rec, next_rec)

    def mark_fleet_seeded(self) -> bool:
        """True for the first caller only: the fleet file is loaded once per store."""
        return bool(self._client.set(self._keys.fleet_seeded(), "1", nx=True))

    # ---- the clock --------------------------------------------------------------------------
    def fleet_clock_offset(self) -> float:
        return float(self._client.get(self._keys.fleet_clock_offset()) or 0.0)

    def advance_fleet_clock(self, seconds: float) -> float:
        return float(self._client.incrbyfloat(self._keys.fleet_clock_offset(), seconds))

    # ---- the time scale set at runtime ------------------------------------------------------------
    def fleet_time_scale(self) -> float | None:
        """The duration scale an operator set at runtime; None: each process uses its [fleet] duration_scale."""
        raw = self._client.get(self._keys.fleet_time_scale())
        return None if raw is None else float(raw)

    def set_fleet_time_scale(self, scale: float | None) -> None:
        """Set the runtime duration scale for every process (None: back to each one's setting)."""
        if scale is None:
            self._client.delete(self._keys.fleet_time_scale())
        else:
            self._client.set(self._keys.fleet_time_scale(), repr(float(scale)))

    # ---- operation durations ------------------------------------------------------------------
    def set_fleet_durations(self, durations: dict[str, float]) -> None:
        if durations:
            self._client.hset(self._keys.fleet_durations(), mapping=durations)

    def fleet_durations(self) -> dict[str, float]:
        return {name: float(v) for name, v in self._client.hgetall(self._keys.fleet_durations()).items()}

    # ---- fault rules ----------------------------------------------------------------------------
    def add_fault_rule(self, rule_id: str, rule: dict[str, Any], times: int | None = None) -> None:
        """Store a rule, with how many times it may fire (None: every time), in one MULTI."""
        pipe = self._multi()
        pipe.hset(self._keys.fleet_faults(), rule_id, json.dumps(rule))
        if times is None:
            pipe.hdel(self._keys.fleet_fault_budget(), rule_id)
        else:
            pipe.hset(self._keys.fleet_fault_budget(), rule_id, times)
        pipe.execute()

    def clear_fault_rules(self) -> None:
        self._client.delete(self._keys.fleet_faults(), self._keys.fleet_fault_budget())

    def remove_fault_rule(self, rule_id: str) -> bool:
        """Delete one rule with its budget, in one MULTI; False when there was no such rule."""
        pipe = self._multi()
        pipe.hdel(self._keys.fleet_faults(), rule_id)
        pipe.hdel(self._keys.fleet_fault_budget(), rule_id)
        return bool(pipe.execute()[0])

    def fault_rules(self) -> dict[str, dict[str, Any]]:
        """Rule id -> rule, in rule id order."""
        raw = self._client.hgetall(self._keys.fleet_faults())
        return {rule_id: json.loads(raw[rule_id]) for rule_id in sorted(raw)}

    def fault_budget(self, rule_id: str) -> int | None:
        """How many more times a rule may fire; None when it has no limit."""
        raw = self._client.hget(self._keys.fleet_fault_budget(), rule_id)
        return None if raw is None else int(raw)

    def spend_fault_budget(self, rule_id: str) -> bool:
        """Use one firing of a rule: False once its budget is spent (an unlimited rule always fires)."""
        key = self._keys.fleet_fault_budget()

        def body(pipe: Any) -> bool:
            left = pipe.hget(key, rule_id)
            pipe.multi()
            if left is None:
                return True
            if int(left) <= 0:
                return False
            pipe.hincrby(key, rule_id, -1)
            return True

        return self._transaction(body, key)

    # ---- operations -----------------------------------------------------------------------------
    def start_fleet_op(self, op_id: str, op: dict[str, Any]) -> bool:
        """Record an operation once: False when ``op_id`` was already started (SET NX)."""
        return bool(self._client.set(self._keys.fleet_op(op_id), json.dumps(op), nx=True))

    def fleet_op_exists(self, op_id: str) -> bool:
        return bool(self._client.exists(self._keys.fleet_op(op_id)))

    def get_fleet_op(self, op_id: str) -> dict[str, Any] | None:
        raw = self._client.get(self._keys.fleet_op(op_id))
        return None if raw is None else json.loads(raw)

    def update_fleet_op(self, op_id: str, **changes: Any) -> dict[str, Any] | None:
        """Compare-and-set on one operation; None (and nothing written) when it was never started."""
        key = self._keys.fleet_op(op_id)

        def body(pipe: Any) -> dict[str, Any] | None:
            raw = pipe.get(key)
            pipe.multi()
            if raw is None:
                return None
            op = {**json.loads(raw), **changes}
            pipe.set(key, json.dumps(op))
            return op

        return self._transaction(body, key)

    def list_fleet_ops(self) -> dict[str, dict[str, Any]]:
        """Every operation ever started, by op id."""
        found = self._scan(self._keys.fleet_ops_pattern())
        if not found:
            return {}
        head = len(self._keys.fleet_op(""))
        return {key[head:]: json.loads(raw) for key, raw in zip(found, self._client.mget(found)) if raw is not None}
