"""Hosts and claims: idempotent claims and releases, capacity refusals, no over-commit under races."""
from __future__ import annotations

import pytest

from compute import errors
from compute.models import HostUsage
from compute.store import Store
from tests.contract.conftest import SMALL, Backend, small_host
from tests.support.concurrency import at_once, raised


def test_put_host__record_and_indexes_in_one_transaction(backend: Backend) -> None:
    store, client = backend.counting()
    host = small_host("compute-b")
    store.put_host(host)
    store.put_host(small_host("compute-a"))
    assert (client.direct, client.multis) == (["transaction", "transaction"], 0)
    assert store.get_host("compute-b") == host
    assert [h.name for h in store.list_hosts()] == ["compute-a", "compute-b"]


def test_update_host__changes_fields_and_refuses_an_unknown_host(store: Store) -> None:
    store.put_host(small_host())
    assert store.update_host("compute-1", up=False).up is False
    assert store.get_host("compute-1").up is False
    with pytest.raises(errors.NotFound):
        store.update_host("nope", up=False)


def test_claim__is_idempotent_and_release_gives_it_back_once(store: Store) -> None:
    store.put_host(small_host())
    assert store.claim_resources("compute-1", "vm-1", SMALL) is True
    assert store.claim_resources("compute-1", "vm-1", SMALL) is True
    assert store.get_usage("compute-1") == HostUsage(vcpus_used=2, memory_mb_used=2048, local_gb_used=20,
                                                     running_vms=1)
    assert store.has_claim("compute-1", "vm-1")
    assert store.claims_on_host("compute-1") == {"vm-1"}
    assert store.hosts_claimed_by("vm-1") == {"compute-1"}

    assert store.release_claim("compute-1", "vm-1") is True
    assert store.release_claim("compute-1", "vm-1") is False
    assert store.get_usage("compute-1") == HostUsage()
    assert not store.has_claim("compute-1", "vm-1")
    assert store.claims_on_host("compute-1") == set()
    assert store.hosts_claimed_by("vm-1") == set()


def test_claim__refused_when_the_host_lacks_capacity_and_nothing_is_written(store: Store) -> None:
    store.put_host(small_host(vcpus=2))
    store.claim_resources("compute-1", "vm-1", SMALL)
    with pytest.raises(errors.InsufficientResources, match="vcpus"):
        store.claim_resources("compute-1", "vm-2", SMALL)
    assert store.get_usage("compute-1").vcpus_used == 2
    assert not store.has_claim("compute-1", "vm-2")
    assert store.hosts_claimed_by("vm-2") == set()


def test_claim__on_what_a_search_read_is_one_script_while_it_holds(backend: Backend,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim given the search's read (``seen``) sends only its script; once another claim moved the
    host's usage, the script refuses to write and the claim reads again, so nothing is over-committed."""
    backend.store().put_host(small_host(vcpus=4))
    store, client = backend.counting()
    [(_, _, first_basis)] = store.hosts_for_claims(["compute-1"])
    pipelines: list[bool] = []
    opened = client.pipeline
    monkeypatch.setattr(client, "pipeline", lambda transaction=True: pipelines.append(transaction) or opened(transaction))
    client.direct.clear()
    assert store.claim_resources("compute-1", "vm-1", SMALL, seen=first_basis) is True
    assert (pipelines, client.direct) == ([], ["register_script"])  # the script (registered at its first use) alone
    assert store.claim_resources("compute-1", "vm-1", SMALL, seen=first_basis) is True  # idempotent
    assert store.claim_resources("compute-1", "vm-2", SMALL, seen=first_basis) is True  # stale: read again
    with pytest.raises(errors.InsufficientResources, match="vcpus"):
        store.claim_resources("compute-1", "vm-3", SMALL, seen=first_basis)
    assert store.claims_on_host("compute-1") == {"vm-1", "vm-2"}
    assert store.get_usage("compute-1") == HostUsage(vcpus_used=4, memory_mb_used=2 * 2048, local_gb_used=40,
                                                     running_vms=2)


def test_claim__a_read_that_saw_the_host_full_does_not_refuse_once_it_has_room(store: Store) -> None:
    store.put_host(small_host(vcpus=2))
    store.claim_resources("compute-1", "vm-1", SMALL)
    [(_, _, full)] = store.hosts_for_claims(["compute-1"])
    store.release_claim("compute-1", "vm-1")
    assert store.claim_resources("compute-1", "vm-2", SMALL, seen=full) is True
    assert store.claims_on_host("compute-1") == {"vm-2"}


def test_claim__concurrent_claims_on_one_search_read_never_over_commit(real_backend: Backend) -> None:
    """Twelve threads claim on the same read of a host that fits three: three land, as without it."""
    store = real_backend.store()
    store.put_host(small_host(vcpus=6))
    [(_, _, basis)] = store.hosts_for_claims(["compute-1"])
    outcomes = at_once(12, lambda n: store.claim_resources("compute-1", f"vm-{n}", SMALL, seen=basis))
    won = [f"vm-{n}" for n, outcome in enumerate(outcomes) if not isinstance(outcome, BaseException)]
    assert all(isinstance(e, errors.InsufficientResources) for e in raised(outcomes))
    assert (len(won), len(raised(outcomes))) == (3, 9)
    assert store.get_usage("compute-1") == HostUsage(vcpus_used=6, memory_mb_used=3 * 2048, local_gb_used=60,
                                                     running_vms=3)


def test_claim__unknown_host(store: Store) -> None:
    with pytest.raises(errors.NotFound):
        store.claim_resources("nope", "vm-1", SMALL)


def test_claim__concurrent_claims_never_over_commit(store: Store) -> None:
    """Twelve threads race for a host that fits three: exactly three claims land."""
    store.put_host(small_host(vcpus=6))
    outcomes = at_once(12, lambda n: store.claim_resources("compute-1", f"vm-{n}", SMALL))
    won = [f"vm-{n}" for n, outcome in enumerate(outcomes) if not isinstance(outcome, BaseException)]
    assert all(isinstance(e, errors.InsufficientResources) for e in raised(outcomes))
    assert (len(won), len(raised(outcomes))) == (3, 9)
    assert store.claims_on_host("compute-1") == set(won)
    assert store.get_usage("compute-1") == HostUsage(vcpus_used=6, memory_mb_used=3 * 2048, local_gb_used=60,
                                                     running_vms=3)
