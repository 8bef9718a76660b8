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
    trigrams = [f"hosts:trigram:{t}" for t in ("com", "e-1", "mpu", "omp", "put", "te-", "ute")]
    assert sorted(mine.scan_keys("host*")) == [f"{backend.prefix}{k}" for k in sorted((
        "host:compute-1", "host:compute-1:placement", "hosts", "hosts:by_service_id", "hosts:by_service_uuid",
        "hosts:by_uuid", "hosts:totals", *trigrams))]
    # Each store: the host, its index, its three id lookups, the totals, the 7 trigram sets of its name
    # and its placement entry (3 keys: host:...:placement, placement:nova, placement_zones), the flavor
    # and its index: 18.
    assert mine.count_keys() == 36  # mine and, sharing its prefix, the neighbour's
    assert neighbour.count_keys() == 18  # the glob characters in its prefix match only themselves
    assert neighbour.delete_all() == 18
    assert mine.count_keys() == 18
    assert mine.delete_all() == 18
    assert mine.scan_keys() == []
