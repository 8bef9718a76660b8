"""fleet/simulator.py: the poll right after a start is answered by what that start read or wrote
(no read back), and only then: another op, a later poll, a cancel or a stale start all read the store."""
from __future__ import annotations

import time

import pytest

from compute import errors
from compute.models import Instance
from compute.store import Store
from fleet import simulator
from fleet.simulator import SimulatedFleet

HOST = "compute-kvm-1"  # a host of config/fleet.yaml (the ``fleet`` fixture seeds it)


@pytest.fixture
def reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The op id of every ``read_fleet`` the store serves (None: no op asked for)."""
    seen: list[str | None] = []
    original = store.read_fleet

    def counted(**kwargs: object) -> object:
        seen.append(kwargs.get("op_id"))  # type: ignore[arg-type]
        return original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "read_fleet", counted)
    return seen


def guest() -> Instance:
    """The server a power operation names (the simulator reads nothing of it for these)."""
    return Instance.model_construct(id="i-1", host=HOST, node=HOST)


def test_the_poll_after_a_start__reads_nothing_and_sees_the_op_it_started(
        fleet: SimulatedFleet, reads: list[str | None]) -> None:
    fleet.set_durations({"power_off": 30.0})
    fleet.power_off("op-1", HOST, guest())
    status = fleet.poll("op-1")
    assert reads == ["op-1"]  # the start's read only
    assert not status.done and status.due_in is not None and 29.0 < status.due_in <= 30.002
    assert fleet.poll("op-1").done is False and reads == ["op-1", "op-1"]  # the next poll reads


def test_a_cancel_after_the_start__is_what_the_poll_sees(fleet: SimulatedFleet, reads: list[str | None]) -> None:
    fleet.set_durations({"power_off": 30.0})
    fleet.power_off("op-1", HOST, guest())
    fleet.cancel("op-1")
    assert fleet.poll("op-1").error == "cancelled"


def test_a_start_found_started__answers_its_poll_with_the_stored_op(
        fleet: SimulatedFleet, reads: list[str | None]) -> None:
    fleet.power_off("op-1", HOST, guest())
    fleet.cancel("op-1")
    fleet.power_off("op-1", HOST, guest())  # a redelivered step: the op is there, cancelled
    assert fleet.poll("op-1").error == "cancelled"
    assert fleet.operation_count("power_off") == 1


def test_another_op_or_a_stale_start__is_read(fleet: SimulatedFleet, reads: list[str | None],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fleet.power_off("op-1", HOST, guest())
    assert fleet.poll("op-2").error == "Unknown operation op-2"
    assert reads == ["op-1", "op-2"]
    monkeypatch.setattr(simulator, "_STARTED_FRESH_SECONDS", -1.0)
    fleet.power_on("op-3", HOST, guest())
    assert fleet.poll("op-3").error is None
    assert reads == ["op-1", "op-2", "op-3", "op-3"]


def test_the_clock_after_a_start__uses_its_offset_until_it_moves(
        fleet: SimulatedFleet, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet.clock.advance(100.0)
    fleet.power_off("op-1", HOST, guest())
    offset_reads: list[str] = []
    real_offset = store.fleet_clock_offset
    monkeypatch.setattr(store, "fleet_clock_offset", lambda: offset_reads.append("read") or real_offset())
    assert fleet.clock.now() - 100.0 == pytest.approx(time.time(), abs=1.0)
    assert offset_reads == []  # the start's reading
    fleet.clock.advance(50.0)  # the jump is read by the next now()
    assert fleet.clock.now() - 150.0 == pytest.approx(time.time(), abs=1.0)
    assert offset_reads == ["read"]


def test_the_source_check_after_the_destination_check__is_answered_by_its_read_once(
        fleet: SimulatedFleet, reads: list[str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    """The destination check reads the server's host with its own; the source check right after is
    answered by that (down is still down), and only then: a second one, or a stale one, reads."""
    dest, inst = "compute-kvm-2", guest()
    fleet.set_host_state(HOST, up=False)
    fleet.check_can_live_migrate_destination(dest, inst, False)
    with pytest.raises(errors.DriverError, match="is not responding"):
        fleet.check_can_live_migrate_source(HOST, dest, inst, False)
    assert len(reads) == 1
    fleet.set_host_state(HOST, up=True)
    fleet.check_can_live_migrate_source(HOST, dest, inst, False)
    assert len(reads) == 2
    fleet.check_can_live_migrate_destination(dest, inst, False)
    monkeypatch.setattr(simulator, "_STARTED_FRESH_SECONDS", -1.0)
    fleet.add_fault("check_can_live_migrate_source", host=HOST, message="source refuses")
    with pytest.raises(errors.DriverError, match="source refuses"):
        fleet.check_can_live_migrate_source(HOST, dest, inst, False)
    assert len(reads) == 4
