"""Quotas under races: 100 concurrent creates over HTTP, in several gunicorn processes, never pass a limit;
deletes (even duplicated, concurrent) give back exactly once; a failed build counts until it is deleted."""
from __future__ import annotations

from typing import Any

import pytest

from compute.states import VmState
from tests.integration import quota_fixtures
from tests.integration.conftest import Namespace, StartWorker
from tests.integration.quota_fixtures import ApiProcess, at_once
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for

pytestmark = pytest.mark.redis
api = quota_fixtures.api  # the fixture


def server_body(flavor: str = "1", name: str = "vm") -> dict[str, Any]:
    return {"server": {"name": name, "imageRef": IMAGE_ID, "flavorRef": flavor, "networks": "none"}}


def in_use(api: ApiProcess, project: str) -> dict[str, int]:
    body = api.call("GET", f"/os-quota-sets/{project}/detail", token="admin:admin").json()["quota_set"]
    return {r: body[r]["in_use"] for r in ("instances", "cores", "ram")}


def test_100_concurrent_creates_never_pass_the_instances_quota(api: ApiProcess, runtime: Any) -> None:
    answers = at_once(100, lambda i: api.call("POST", "/servers", server_body(name=f"vm-{i}")))
    codes = sorted(a.status for a in answers)
    assert codes.count(202) == 10 and codes.count(403) == 90, codes
    messages = {a.json()["forbidden"]["message"] for a in answers if a.status == 403}
    assert messages == {"Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"}
    servers = [i for i in runtime.store.list_instances() if i.project_id == "demo"]
    assert len(servers) == 10
    assert {a.json()["server"]["id"] for a in answers if a.status == 202} == {i.id for i in servers}
    assert in_use(api, "demo") == {"instances": 10, "cores": 10, "ram": 5120}


def test_concurrent_creates_never_pass_the_cores_quota(api: ApiProcess, runtime: Any) -> None:
    """m1.large (4 vcpus, 8192 MiB): cores 20 allows 5 (ram 51200 would allow 6)."""
    answers = at_once(60, lambda i: api.call("POST", "/servers", server_body("4"), token=f"u{i % 3}:big"))
    assert sorted(a.status for a in answers).count(202) == 5
    messages = {a.json()["forbidden"]["message"] for a in answers if a.status == 403}
    assert messages == {"Quota exceeded for cores: Requested 4, but already used 20 of 20 cores"}
    assert in_use(api, "big") == {"instances": 5, "cores": 20, "ram": 40960}
    limits = api.call("GET", "/limits", token="u0:big").json()["limits"]["absolute"]
    assert (limits["totalCoresUsed"], limits["maxTotalCores"], limits["totalInstancesUsed"]) == (20, 20, 5)


def test_concurrent_creates_with_a_quota_lowered_meanwhile(api: ApiProcess, runtime: Any) -> None:
    """A PUT that lowers the quota while creates run: the usage never ends above the final limit
    (the PUT's check and the creates' checks read the same counters under WATCH)."""
    api.call("PUT", "/os-quota-sets/low", {"quota_set": {"instances": 30}}, token="admin:admin")

    def call(i: int) -> Any:
        if i == 0:
            return api.call("PUT", "/os-quota-sets/low", {"quota_set": {"instances": 4}}, token="admin:admin")
        return api.call("POST", "/servers", server_body(), token="x:low")

    answers = at_once(41, call)
    lowered, creates = answers[0], answers[1:]
    created = sum(a.status == 202 for a in creates)
    limit = api.call("GET", "/os-quota-sets/low", token="admin:admin").json()["quota_set"]["instances"]
    if lowered.status == 200:
        assert limit == 4 and created <= 4
    else:  # the creates got there first: the PUT refused to go below what was used
        assert lowered.status == 400 and "already used and reserved" in lowered.json()["badRequest"]["message"]
        assert limit == 30 and created <= 30
    assert in_use(api, "low")["instances"] == created


def test_deletes_give_back_exactly_once_and_a_failed_build_counts_until_deleted(
        api: ApiProcess, runtime: Any, namespace: Namespace, start_worker: StartWorker) -> None:
    start_worker("quota")
    store = runtime.store
    ids = [api.call("POST", "/servers", server_body(name=f"vm-{i}")).json()["server"]["id"] for i in range(10)]
    wait_for(lambda: all(store.get_instance(i).vm_state == VmState.ACTIVE for i in ids), 120,
             message="10 servers ACTIVE")
    assert api.call("POST", "/servers", server_body()).status == 403

    # every server deleted twice, all at once: twenty DELETEs, ten releases
    answers = at_once(20, lambda i: api.call("DELETE", f"/servers/{ids[i % 10]}"))
    assert {a.status for a in answers} <= {204, 404, 409}
    wait_for(lambda: all(store.get_instance(i).deleted for i in ids), 120, message="10 servers deleted")
    assert in_use(api, "demo") == {"instances": 0, "cores": 0, "ram": 0}

    # a build that fails leaves the server in ERROR, which still counts (as in Nova)
    runtime.fleet.add_fault("spawn", times=1)
    failed = api.call("POST", "/servers", server_body()).json()["server"]["id"]
    wait_for(lambda: store.get_instance(failed).vm_state == VmState.ERROR, 120, message="the build in ERROR")
    assert in_use(api, "demo")["instances"] == 1
    assert api.call("DELETE", f"/servers/{failed}").status == 204
    wait_for(lambda: store.get_instance(failed).deleted, 120, message="the failed server deleted")
    assert in_use(api, "demo") == {"instances": 0, "cores": 0, "ram": 0}

    again = at_once(12, lambda i: api.call("POST", "/servers", server_body()))
    assert sorted(a.status for a in again).count(202) == 10
