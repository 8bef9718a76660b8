"""Seeding the fleet (fleet/loader.py, compute/store/fleet_seed.py): atomic, idempotent, and a changed
fleet file applied or refused with a logged reason, never ignored."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from compute.store import Store
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tests.contract.conftest import SMALL, Backend
from tests.support.concurrency import at_once

FLAVORS = [{"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
           {"id": "2", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20}]


def host(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "vcpus": 16, "memory_mb": 65536, "local_gb": 1000, **fields}


def write(path: Path, hosts: list[dict[str, Any]], **more: Any) -> Path:
    path.write_text(yaml.safe_dump({"durations": {"spawn": 1.0}, "hosts": hosts, "flavors": FLAVORS, **more}))
    return path


def seed(store: Store, path: Path) -> bool:
    return seed_fleet(store, SimulatedFleet(store), path)


def names(store: Store) -> list[str]:
    return [h.name for h in store.list_hosts()]


def candidates(store: Store, zone: str = "nova") -> list[str]:
    return [name for name, _ in store.placement_window([zone], 0, 1000)]


def dump(backend: Backend) -> dict[str, bytes]:
    return {key: backend.client.dump(key) for key in backend.client.scan_iter(match=f"{backend.prefix}*")}


def test_seed__once_then_the_same_file_changes_nothing(backend: Backend, store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.yaml", [host("a"), host("b", availability_zone="az1")])
    assert seed(store, path) is True
    before = dump(backend)
    assert seed(store, path) is False
    assert dump(backend) == before
    assert names(store) == ["a", "b"]
    assert store.get_host("b").availability_zone == "az1"
    assert (candidates(store), candidates(store, "az1")) == (["a"], ["b"])
    assert [f.id for f in sorted(store.list_flavors(), key=lambda f: f.id)] == ["1", "2"]
    assert store.fleet_durations() == {"spawn": 1.0}
    assert store.fleet_digest() is not None


def test_seed__a_changed_file_adds_and_updates_hosts_and_keeps_their_runtime_state(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "fleet.yaml", [host("a"), host("b")])
    seed(store, path)
    store.update_host("b", enabled=False, disabled_reason="maintenance")
    write(path, [host("a", memory_mb=131072), host("b", cpu_model="Skylake-Server"), host("c")],
          durations={"spawn": 2.0})
    with caplog.at_level(logging.WARNING, logger="fleet.loader"):
        assert seed(store, path) is True
    assert "changed since it was loaded" in caplog.text and "1 hosts added ['c']" in caplog.text
    assert names(store) == ["a", "b", "c"]
    assert store.get_host("a").memory_mb == 131072
    b = store.get_host("b")
    assert (b.cpu_model, b.enabled, b.disabled_reason) == ("Skylake-Server", False, "maintenance")
    assert candidates(store) == ["a", "c"]  # a has the most free RAM now; b stays disabled
    assert store.fleet_durations() == {"spawn": 2.0}


def test_seed__a_host_holding_claims_is_never_removed_the_change_is_refused(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "fleet.yaml", [host("a"), host("b"), host("c")])
    seed(store, path)
    digest = store.fleet_digest()
    store.claim_resources("b", "vm-1", SMALL)
    write(path, [host("a"), host("d")])
    with caplog.at_level(logging.ERROR, logger="fleet.loader"):
        assert seed(store, path) is False
    assert "NOT applied" in caplog.text and "no longer lists b" in caplog.text
    assert (names(store), store.fleet_digest()) == (["a", "b", "c"], digest)  # nothing of it written
    store.release_claim("b", "vm-1")
    assert seed(store, path) is True
    assert names(store) == ["a", "d"]
    assert candidates(store) == ["a", "d"]


def test_seed__a_host_in_two_zones_is_refused(store: Store, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "fleet.yaml", [host("a", availability_zone="az1")],
                 aggregates=[{"name": "other", "availability_zone": "az2", "hosts": ["a"]}])
    with caplog.at_level(logging.ERROR, logger="fleet.loader"):
        assert seed(store, path) is False
    assert "more than one zone" in caplog.text
    assert store.scan_keys() == []


class FailingExec:
    """A client whose MULTI/EXEC never reaches Redis: the process dies at the commit."""

    def __init__(self, inner: redis.Redis) -> None:
        self._inner = inner

    def transaction(self, body: Any, *watches: str, **options: Any) -> Any:
        def dying(pipe: Any) -> None:
            body(pipe)  # every write queued in the MULTI...
            raise redis.ConnectionError("the process died before EXEC")  # ...and never sent

        return self._inner.transaction(dying, *watches, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_seed__a_crash_before_the_commit_leaves_no_partial_fleet(backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.yaml", [host(f"h{i}") for i in range(50)])
    dying = Store(FailingExec(backend.client), prefix=backend.prefix)  # type: ignore[arg-type]
    with pytest.raises(redis.ConnectionError):
        seed(dying, path)
    store = backend.store()
    assert store.scan_keys() == [] and store.fleet_digest() is None
    assert seed(store, path) is True
    assert len(names(store)) == 50


def test_seed__processes_starting_together_write_the_fleet_once(real_backend: Backend, tmp_path: Path) -> None:
    path = write(tmp_path / "fleet.yaml", [host(f"h{i}") for i in range(200)],
                 aggregates=[{"name": "rack", "hosts": ["h1", "h2"]}])
    outcomes = at_once(4, lambda _: seed(real_backend.store(), path))
    store = real_backend.store()
    assert sorted(outcomes) == [False, False, False, True]
    assert len(names(store)) == 200 and len(candidates(store)) == 200
    assert [a.name for a in store.list_aggregates()] == ["rack"]
