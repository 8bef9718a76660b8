"""The simulated fleet's shared state, as the store keeps it for fleet/."""
from __future__ import annotations

from compute.models import Host
from compute.store import Store


def test_seeded_once(store: Store) -> None:
    assert store.mark_fleet_seeded() is True
    assert store.mark_fleet_seeded() is False


def test_clock_offset(store: Store) -> None:
    assert store.fleet_clock_offset() == 0.0
    store.advance_fleet_clock(1.5)
    assert store.advance_fleet_clock(2.0) == 3.5
    assert store.fleet_clock_offset() == 3.5


def test_durations(store: Store) -> None:
    store.set_fleet_durations({})
    assert store.fleet_durations() == {}
    store.set_fleet_durations({"spawn": 2.0, "snapshot_per_gb": 0.05})
    store.set_fleet_durations({"spawn": 1.0})
    assert store.fleet_durations() == {"spawn": 1.0, "snapshot_per_gb": 0.05}


def test_fault_rules_and_their_budget(store: Store) -> None:
    store.add_fault_rule("spawn:*:fail", {"operation": "spawn"}, times=2)
    store.add_fault_rule("destroy:*:hang", {"operation": "destroy"})
    assert list(store.fault_rules()) == ["destroy:*:hang", "spawn:*:fail"]
    assert store.fault_budget("spawn:*:fail") == 2
    assert store.fault_budget("destroy:*:hang") is None
    assert [store.spend_fault_budget("spawn:*:fail") for _ in range(3)] == [True, True, False]
    assert store.fault_budget("spawn:*:fail") == 0
    assert all(store.spend_fault_budget("destroy:*:hang") for _ in range(3))
    store.clear_fault_rules()
    assert store.fault_rules() == {}
    assert store.fault_budget("spawn:*:fail") is None


def test_operations__started_once_updated_in_place_listed(store: Store) -> None:
    op = {"operation": "spawn", "host": "compute-1", "started_at": 1.0, "cancelled": False}
    assert store.start_fleet_op("req-1:spawn", op) is True
    assert store.start_fleet_op("req-1:spawn", {**op, "started_at": 2.0}) is False
    assert store.fleet_op_exists("req-1:spawn")
    assert store.update_fleet_op("req-1:spawn", cancelled=True) == {**op, "cancelled": True}
    assert store.update_fleet_op("req-2:spawn", cancelled=True) is None
    assert not store.fleet_op_exists("req-2:spawn")
    assert store.get_fleet_op("req-1:spawn") == {**op, "cancelled": True}
    assert store.list_fleet_ops() == {"req-1:spawn": {**op, "cancelled": True}}


def test_read_fleet__what_an_operation_needs_in_one_read(store: Store) -> None:
    empty = store.read_fleet(op_id="req-1:spawn", host="compute-1")
    assert (empty.clock_offset, empty.durations, empty.time_scale, empty.fault_rules) == (0.0, {}, None, {})
    assert (empty.op, empty.host) == (None, None)

    store.advance_fleet_clock(2.5)
    store.set_fleet_durations({"spawn": 2.0})
    store.set_fleet_time_scale(0.5)
    store.add_fault_rule("spawn:*:fail", {"operation": "spawn", "host": None}, times=1)
    store.add_fault_rule("destroy:*:hang", {"operation": "destroy", "host": None})
    store.start_fleet_op("req-1:spawn", {"operation": "spawn", "started_at": 1.0})
    store.put_host(Host(name="compute-1", service_id=1, up=False))

    reading = store.read_fleet(op_id="req-1:spawn", host="compute-1")
    assert (reading.clock_offset, reading.durations, reading.time_scale) == (2.5, {"spawn": 2.0}, 0.5)
    assert list(reading.fault_rules) == ["destroy:*:hang", "spawn:*:fail"]  # rule id order, as fault_rules
    assert reading.fault_rules == store.fault_rules()
    assert reading.op == {"operation": "spawn", "started_at": 1.0}
    assert reading.host is not None and (reading.host.name, reading.host.up) == ("compute-1", False)

    clock_only = store.read_fleet(op_id="req-1:spawn", settings=False)
    assert (clock_only.clock_offset, clock_only.durations, clock_only.fault_rules) == (2.5, {}, {})
    assert clock_only.op == reading.op and clock_only.host is None

    checked = store.read_fleet(host="compute-1", settings=False, faults=True)  # what a synchronous check needs
    assert (checked.durations, checked.time_scale, checked.fault_rules) == ({}, None, reading.fault_rules)
    assert checked.host == reading.host and checked.op is None
