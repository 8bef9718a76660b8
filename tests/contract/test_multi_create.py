"""A create request of several servers (min_count..max_count): the store writes all of them or none,
under the quota check, however many such requests run at once; on fakeredis and real Redis."""
from __future__ import annotations

import pytest

from compute import errors, quotas
from compute.settings import QuotaOptions
from compute.store import Store
from compute.store.instances import NewServer
from tests.contract.conftest import SMALL, Backend, action_for, server
from tests.support.concurrency import at_once, raised

OPTIONS = QuotaOptions()


def request(store: Store, min_count: int, max_count: int) -> list[NewServer]:
    """One request's servers, named as Nova names them, through the count check."""
    def build(count: int) -> list[NewServer]:
        made = []
        for index in range(count):
            inst = server(launch_index=index)
            inst.name = f"vm-{index + 1}" if count > 1 else "vm"
            made.append(NewServer(inst, *action_for(inst)))
        return made

    return store.create_instances(build, max_count, 30, project_id="demo", user_id="demo",
                                  count_allowed=quotas.instance_create_count(OPTIONS, SMALL, min_count, max_count))


def instances_used(store: Store) -> int:
    return store.quota_snapshot("demo").project_usage.get("instances", 0)


def test_create_instances__writes_every_server_its_action_and_run(store: Store) -> None:
    created = request(store, 3, 3)
    assert [n.instance.name for n in created] == ["vm-1", "vm-2", "vm-3"]
    for new in created:
        assert store.get_instance(new.instance.id) is not None
        assert store.get_action(new.action.request_id).instance_uuid == new.instance.id
        assert store.get_run(new.run.request_id) is not None
    assert instances_used(store) == 3
    assert store.quota_snapshot("demo").project_usage["cores"] == 3 * SMALL.vcpus


def test_create_instances__as_many_as_the_quota_allows_between_min_and_max(store: Store) -> None:
    store.update_quotas("demo", None, {"instances": 5}, lambda snap: None)
    request(store, 3, 3)
    created = request(store, 1, 4)
    assert [n.instance.name for n in created] == ["vm-1", "vm-2"]  # named for the two made
    assert instances_used(store) == 5


def test_create_instances__below_min_count_writes_nothing(store: Store) -> None:
    store.update_quotas("demo", None, {"instances": 5}, lambda snap: None)
    request(store, 3, 3)
    with pytest.raises(errors.OverQuota) as caught:
        request(store, 3, 4)
    assert caught.value.message == "Quota exceeded for instances: Requested 3-4, but already used 3 of 5 instances"
    assert len(store.list_instances()) == 3 and instances_used(store) == 3


def test_create_instances__cores_limit_the_count_too(store: Store) -> None:
    store.update_quotas("demo", None, {"cores": 5}, lambda snap: None)  # SMALL has 2 vcpus: room for 2
    assert len(request(store, 1, 10)) == 2
    with pytest.raises(errors.OverQuota) as caught:
        request(store, 1, 1)
    assert caught.value.message == "Quota exceeded for cores: Requested 2, but already used 4 of 5 cores"


@pytest.mark.parametrize("min_count, max_count", [(1, 3), (3, 3)])
def test_create_instances__concurrent_requests_never_pass_the_limit_nor_split(
        backend: Backend, min_count: int, max_count: int) -> None:
    store = backend.store()
    store.update_quotas("demo", None, {"instances": 10}, lambda snap: None)
    threads = 20
    outcomes = at_once(threads, lambda _: len(request(backend.store(), min_count, max_count)))
    sizes = [o for o in outcomes if isinstance(o, int)]
    assert all(isinstance(e, errors.OverQuota) for e in raised(outcomes))
    assert len(sizes) + len(raised(outcomes)) == threads
    assert all(min_count <= size <= max_count for size in sizes)
    # All or nothing, and as many as fit: min 1 fills the quota; min 3 leaves the last 1 free.
    assert sum(sizes) == (10 if min_count == 1 else 9)
    assert instances_used(store) == len(store.list_instances()) == sum(sizes)
