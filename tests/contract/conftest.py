"""The store's contract: every test here runs against fakeredis and against the real Redis.

The two must behave alike (dev mode and the unit tests use fakeredis, production uses
Redis), so each case is parametrized over both. The real-Redis store gets its own key
prefix, and whatever it wrote is deleted afterwards. After every test, each key the
store left must be one that compute/store/keys.py documents.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from compute.models import (
    Flavor,
    FlowRun,
    Host,
    Instance,
    InstanceAction,
    new_request_id,
)
from compute.store import Store, keys
from tests.conftest import real_redis_or_fail

_DOCUMENTED = re.compile(r"^``([^`]+)`` ", re.MULTILINE)


def documented_key_patterns() -> list[re.Pattern[str]]:
    """The key column of the table in compute/store/keys.py, as regular expressions."""
    patterns = []
    for name in _DOCUMENTED.findall(keys.__doc__ or ""):
        parts = re.split(r"(\{[a-z_]+\})", name)
        body = "".join((".+" if p == "{op_id}" else "[^:]+") if p.startswith("{") else re.escape(p)
                       for p in parts)
        patterns.append(re.compile(body + r"\Z"))
    return patterns


class CountingClient:
    """A pass-through client that notes each command sent on its own and each MULTI pipeline opened.

    A write that is atomic shows up as no direct commands and exactly one MULTI.
    """

    def __init__(self, inner: redis.Redis) -> None:
        self._inner = inner
        self.direct: list[str] = []
        self.multis = 0

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        if transaction:
            self.multis += 1
        return self._inner.pipeline(transaction=transaction, shard_hint=shard_hint)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.direct.append(name)
            return attr(*args, **kwargs)

        return call


class Backend:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def store(self) -> Store:
        return Store(self.client, prefix=self.prefix)

    def counting(self) -> tuple[Store, CountingClient]:
        counter = CountingClient(self.client)
        return Store(counter, prefix=self.prefix), counter  # type: ignore[arg-type]

    def leftover_keys(self) -> list[str]:
        return [k[len(self.prefix):] for k in self.client.scan_iter(match=f"{self.prefix}*", count=1000)]


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from open_backend(request.param)


@pytest.fixture
def fake_backend() -> Iterator[Backend]:
    """fakeredis only: for what would disturb other runs on the shared Redis (SCRIPT FLUSH)."""
    yield from open_backend("fakeredis")


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis)])
def real_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The real Redis only: for cases where threads race on one server (fakeredis serialises them)."""
    yield from open_backend(request.param)


def open_backend(kind: str) -> Iterator[Backend]:
    prefix = f"contract-{uuid.uuid4().hex[:12]}:"
    if kind == "fakeredis":
        client = fakeredis.FakeRedis(decode_responses=True)
    else:
        client = real_redis_or_fail()
    found = Backend(client, prefix)
    try:
        yield found
        patterns = documented_key_patterns()
        undocumented = [k for k in found.leftover_keys() if not any(p.match(k) for p in patterns)]
        assert undocumented == [], f"keys missing from compute/store/keys.py: {undocumented}"
    finally:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store()


# ---- records the cases share -------------------------------------------------------------------
SMALL = Flavor(id="small", name="m1.small", vcpus=2, ram=2048, disk=20)


def small_host(name: str = "compute-1", vcpus: int = 4) -> Host:
    """A host that fits exactly ``vcpus / 2`` small servers at cpu_allocation_ratio 1."""
    return Host(name=name, vcpus=vcpus, memory_mb=1 << 20, local_gb=10_000, cpu_allocation_ratio=1.0)


def server(**fields: Any) -> Instance:
    return Instance(name="vm", project_id="demo", user_id="demo", flavor=SMALL, **fields)


def action_for(inst: Instance, action: str = "create") -> tuple[InstanceAction, FlowRun]:
    rid = new_request_id()
    return (InstanceAction(request_id=rid, action=action, instance_uuid=inst.id, user_id="demo", project_id="demo"),
            FlowRun(request_id=rid, flow=action, instance_uuid=inst.id))
