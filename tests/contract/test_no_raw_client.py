"""Only compute/store/ talks to Redis through a Store: nothing else reaches its raw client or keys."""
from __future__ import annotations

import re
from pathlib import Path

from compute.settings import REPO_ROOT

_SOURCES = ("api", "bench", "compute", "fleet", "tasks", "tests", "workers")
# ``store.r.get(...)``, ``store._client``, ``store._keys``, ``store.k("...")`` on any store-like name.
_RAW = re.compile(r"store\.(?:r\b|_client\b|_redis\b|_keys\b|k\()")


def test_no_module_outside_compute_store_reaches_the_raw_client() -> None:
    store_package = REPO_ROOT / "compute" / "store"
    offenders = []
    for top in _SOURCES:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            if store_package in path.parents or path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if _RAW.search(line):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_old_public_client_attribute_is_gone() -> None:
    import fakeredis

    from compute.store import Store

    store = Store(fakeredis.FakeRedis(decode_responses=True), prefix="x:")
    assert not hasattr(store, "r") and not hasattr(store, "k")
