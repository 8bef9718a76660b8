"""One store, one prefix: scans, counts and cleanup never reach another store's keys."""
from __future__ import annotations

from compute.store import Store
from tests.contract.conftest import SMALL, Backend, small_host


def test_scan_count_and_delete_all_stay_inside_the_prefix(backend: Backend) -> None:
    mine = backend.store()
    neighbour = Store(backend.client, prefix=backend.prefix + "neighbour*[x]:")
    for store in (mine, neighbour):
        store.put_host(small_host())
        store.put_flavor(SMALL)
    assert sorted(mine.scan_keys("host*")) == [f"{backend.prefix}{k}" for k in (
        "host:compute-1", "host:compute-1:placement", "hosts", "hosts:by_service_id", "hosts:by_uuid")]
    # Each store: the host, its index, its two hypervisor-id lookups and its placement entry (3 keys:
    # host:...:placement, placement:nova, placement_zones), the flavor and its index: 9.
    assert mine.count_keys() == 18  # mine and, sharing its prefix, the neighbour's
    assert neighbour.count_keys() == 9  # the glob characters in its prefix match only themselves
    assert neighbour.delete_all() == 9
    assert mine.count_keys() == 9
    assert mine.delete_all() == 9
    assert mine.scan_keys() == []
