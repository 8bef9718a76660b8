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
    assert sorted(mine.scan_keys("host*")) == [f"{backend.prefix}host:compute-1", f"{backend.prefix}hosts"]
    assert mine.count_keys() == 8  # mine (4 keys) and, sharing its prefix, the neighbour's (4)
    assert neighbour.count_keys() == 4  # the glob characters in its prefix match only themselves
    assert neighbour.delete_all() == 4
    assert mine.count_keys() == 4
    assert mine.delete_all() == 4
    assert mine.scan_keys() == []
