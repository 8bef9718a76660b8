"""A move the broker refuses (503) was refused: nothing of it is visible afterwards.

A cold migration's record was already hidden; a live migration's was left listed in
``GET /os-migrations`` with status ``error``, as if it had been tried and failed.
"""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from compute import errors
from compute.models import Instance

ADMIN = {"X-Auth-Token": "admin:admin"}
LIVE = {"os-migrateLive": {"host": None, "block_migration": "auto"}}
COLD = {"migrate": None}


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def visible_migrations(client: FlaskClient, server: Instance) -> list[dict[str, Any]]:
    found = []
    for version in ("2.1", "2.23", "2.59", "2.80", "2.104"):
        response = client.get("/v2.1/os-migrations", headers={**ADMIN, **mv(version)})
        assert response.status_code == 200
        found += [m for m in response.get_json()["migrations"] if m["instance_uuid"] == server.id]
        filtered = client.get(f"/v2.1/os-migrations?instance_uuid={server.id}&status=error",
                              headers={**ADMIN, **mv(version)})
        found += filtered.get_json()["migrations"]
    in_progress = client.get(f"/v2.1/servers/{server.id}/migrations", headers={**ADMIN, **mv("2.80")})
    return found + in_progress.get_json()["migrations"]


@pytest.mark.parametrize("body, version", [(LIVE, "2.34"), (LIVE, "2.80"), (COLD, "2.56")],
                         ids=["live-2.34", "live-2.80", "cold"])
def test_refused_by_the_broker__503_and_no_migration_listed(client: FlaskClient, enqueuer: Any, store: Any,
                                                            active_server: Instance, body: dict[str, Any],
                                                            version: str) -> None:
    enqueuer.fail_with = errors.QueueUnavailable("broker down")
    response = client.post(f"/v2.1/servers/{active_server.id}/action", json=body, headers={**ADMIN, **mv(version)})
    assert response.status_code == 503
    assert list(response.get_json()) == ["serviceUnavailable"]
    assert visible_migrations(client, active_server) == []
    assert store.get_instance(active_server.id).task_state is None
    [record] = store.list_migrations(active_server.id)  # kept for the operator, hidden like Nova's
    assert (record.status, record.hidden) == ("error", True)


def test_after_a_refusal__the_next_live_migration_is_the_one_listed(client: FlaskClient, enqueuer: Any,
                                                                    active_server: Instance) -> None:
    enqueuer.fail_with = errors.QueueUnavailable("broker down")
    assert client.post(f"/v2.1/servers/{active_server.id}/action", json=LIVE,
                       headers={**ADMIN, **mv("2.34")}).status_code == 503
    enqueuer.fail_with = None
    assert client.post(f"/v2.1/servers/{active_server.id}/action", json=LIVE,
                       headers={**ADMIN, **mv("2.34")}).status_code == 202
    listed = client.get("/v2.1/os-migrations", headers={**ADMIN, **mv("2.34")}).get_json()["migrations"]
    assert [(m["migration_type"], m["status"]) for m in listed] == [("live-migration", "accepted")]
