"""Every policy-guarded operation for every kind of caller, with the classic defaults.

admin = user ``admin``; owner = a member of the server's project; other = a member of
another project (a 404 on a server: lookups are project-scoped); none = no token.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import CALLERS, HOST, IMAGE_ID, mv

Operation = Callable[[Any, Any, dict[str, str], Any], Any]


def first_action(store: Any, server: Any) -> str:
    return store.list_actions(server.id)[-1].request_id


def action(body: dict[str, Any], version: str = "2.1") -> Operation:
    return lambda client, server, headers, store: client.post(
        f"/v2.1/servers/{server.id}/action", json=body, headers={**headers, **mv(version)})


def get(path: str, version: str = "2.1") -> Operation:
    return lambda client, server, headers, store: client.get(path.format(server=server.id),
                                                             headers={**headers, **mv(version)})


OPERATIONS: dict[str, tuple[Operation, dict[str, int]]] = {
    # server operations guarded by admin_or_owner
    "changePassword": (action({"changePassword": {"adminPass": "pw"}}),
                       {"admin": 202, "owner": 202, "other": 404, "none": 401}),
    "show server": (get("/v2.1/servers/{server}"), {"admin": 200, "owner": 200, "other": 404, "none": 401}),
    "delete server": (lambda c, s, h, st: c.delete(f"/v2.1/servers/{s.id}", headers=h),
                      {"admin": 204, "owner": 204, "other": 404, "none": 401}),
    "list instance actions": (get("/v2.1/servers/{server}/os-instance-actions"),
                              {"admin": 200, "owner": 200, "other": 404, "none": 401}),
    "createBackup": (action({"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}),
                     {"admin": 202, "owner": 202, "other": 404, "none": 401}),
    # the policy passes for the owner: the 409 is the state check (the server is not resized)
    "confirmResize": (action({"confirmResize": None}), {"admin": 409, "owner": 409, "other": 404, "none": 401}),
    "revertResize": (action({"revertResize": None}), {"admin": 409, "owner": 409, "other": 404, "none": 401}),
    "show instance action": (lambda c, s, h, st: c.get(
        f"/v2.1/servers/{s.id}/os-instance-actions/{first_action(st, s)}", headers=h),
        {"admin": 200, "owner": 200, "other": 404, "none": 401}),
    "os-stop": (action({"os-stop": None}), {"admin": 202, "owner": 202, "other": 404, "none": 401}),
    "pause": (action({"pause": None}), {"admin": 202, "owner": 202, "other": 404, "none": 401}),
    "suspend": (action({"suspend": None}), {"admin": 202, "owner": 202, "other": 404, "none": 401}),
    "lock": (action({"lock": {"locked_reason": "r"}}, "2.73"), {"admin": 202, "owner": 202, "other": 404, "none": 401}),
    "unlock": (action({"unlock": None}), {"admin": 202, "owner": 202, "other": 404, "none": 401}),
    # the policy passes for the owner: the 409 is the state check (the server is not stopped, paused, suspended)
    "os-start": (action({"os-start": None}), {"admin": 409, "owner": 409, "other": 404, "none": 401}),
    "unpause": (action({"unpause": None}), {"admin": 409, "owner": 409, "other": 404, "none": 401}),
    "resume": (action({"resume": None}), {"admin": 409, "owner": 409, "other": 404, "none": 401}),
    # server operations guarded by admin_api
    "os-resetState": (action({"os-resetState": {"state": "error"}}),
                      {"admin": 202, "owner": 403, "other": 404, "none": 401}),
    "injectNetworkInfo": (action({"injectNetworkInfo": None}),
                          {"admin": 202, "owner": 403, "other": 404, "none": 401}),
    "resetNetwork": (action({"resetNetwork": None}), {"admin": 202, "owner": 403, "other": 404, "none": 401}),
    "migrate": (action({"migrate": None}), {"admin": 202, "owner": 403, "other": 404, "none": 401}),
    "migrate to a host": (action({"migrate": {"host": "compute-kvm-2"}}, "2.56"),
                          {"admin": 202, "owner": 403, "other": 404, "none": 401}),
    "os-migrateLive": (action({"os-migrateLive": {"host": None, "block_migration": "auto"}}, "2.34"),
                       {"admin": 202, "owner": 403, "other": 404, "none": 401}),
    "os-migrateLive to a host": (action({"os-migrateLive": {"host": "compute-kvm-2", "block_migration": "auto"}},
                                        "2.68"), {"admin": 202, "owner": 403, "other": 404, "none": 401}),
    "list server migrations": (get("/v2.1/servers/{server}/migrations", "2.23"),
                               {"admin": 200, "owner": 403, "other": 404, "none": 401}),
    # collections
    "list servers": (get("/v2.1/servers"), {"admin": 200, "owner": 200, "other": 200, "none": 401}),
    "list servers detail": (get("/v2.1/servers/detail"), {"admin": 200, "owner": 200, "other": 200, "none": 401}),
    "list servers all_tenants": (get("/v2.1/servers?all_tenants=1"),
                                 {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "list servers detail all_tenants": (get("/v2.1/servers/detail?all_tenants=true"),
                                        {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "create server": (lambda c, s, h, st: c.post("/v2.1/servers", headers=h, json={
        "server": {"name": "new", "imageRef": IMAGE_ID, "flavorRef": "1"}}),
        {"admin": 202, "owner": 202, "other": 202, "none": 401}),
    "create server on a forced host": (lambda c, s, h, st: c.post("/v2.1/servers", headers=h, json={
        "server": {"name": "new", "imageRef": IMAGE_ID, "flavorRef": "1", "availability_zone": f"nova:{HOST}"}}),
        {"admin": 202, "owner": 403, "other": 403, "none": 401}),
    "list hypervisors": (get("/v2.1/os-hypervisors"), {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "list hypervisors detail": (get("/v2.1/os-hypervisors/detail"),
                                {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "show hypervisor": (get("/v2.1/os-hypervisors/1"), {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "hypervisor statistics": (get("/v2.1/os-hypervisors/statistics"),
                              {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "list services": (get("/v2.1/os-services"), {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "list migrations": (get("/v2.1/os-migrations"), {"admin": 200, "owner": 403, "other": 403, "none": 401}),
    "list flavors": (get("/v2.1/flavors/detail"), {"admin": 200, "owner": 200, "other": 200, "none": 401}),
    "list images": (get("/v2.1/images/detail"), {"admin": 200, "owner": 200, "other": 200, "none": 401}),
}

CASES = [(name, caller) for name in OPERATIONS for caller in CALLERS]


@pytest.mark.parametrize("name, caller", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_policy_matrix(client, store, active_server, name, caller):
    operation, expected = OPERATIONS[name]
    response = operation(client, active_server, CALLERS[caller], store)
    assert response.status_code == expected[caller], response.get_data(as_text=True)
    if expected[caller] == 403:
        (key, inner), = response.get_json().items()
        assert key == "forbidden"
        assert inner["message"].startswith("Policy doesn't allow os_compute_api:")
