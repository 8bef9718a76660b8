"""``usage_by_host``: what the per-host gauges of /metrics read, in two round trips whatever the fleet."""
from __future__ import annotations

from compute.store import Store
from tests.contract.conftest import SMALL, Backend, small_host


def test_usage_by_host__every_host_by_name_in_one_pipeline(backend: Backend, store: Store) -> None:
    for name in ("a", "b", "c"):
        store.put_host(small_host(name, vcpus=64))
    store.claim_resources("a", "vm-1", SMALL)
    store.claim_resources("a", "vm-2", SMALL)
    store.claim_resources("c", "vm-3", SMALL)
    counting, counter = backend.counting()
    usage = counting.usage_by_host()
    assert counter.direct == ["smembers"]  # then the usage hashes, pipelined
    assert counter.multis == 0
    assert {name: (u.memory_mb_used, u.running_vms) for name, u in usage.items()} == {
        "a": (2 * SMALL.ram, 2), "b": (0, 0), "c": (SMALL.ram, 1)}
    assert usage == {name: store.get_usage(name) for name in ("a", "b", "c")}


def test_usage_by_host__no_host_no_read_of_usage(store: Store) -> None:
    assert store.usage_by_host() == {}
