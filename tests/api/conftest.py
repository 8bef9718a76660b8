"""API test fixtures: the Flask app over ComputeService on fakeredis, callers, and servers in known states.

No worker runs here: a created server stays in BUILD. ``active_server`` puts one on a
host the way the create flow would leave it (state, host, resource claim); ``resized_server``
is one in VERIFY_RESIZE the way the migrate flow leaves it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from compute.actions.create_server import create_server
from compute.context import RequestContext
from compute.models import Instance, Migration, utcnow
from compute.service import ComputeService
from compute.settings import Settings
from compute.states import PowerState, VmState
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine, build_engine

ADMIN = {"X-Auth-Token": "admin:admin"}
OWNER = {"X-Auth-Token": "alice:demo"}
OTHER = {"X-Auth-Token": "bob:other"}
NOBODY: dict[str, str] = {}
CALLERS = {"admin": ADMIN, "owner": OWNER, "other": OTHER, "none": NOBODY}

HOST = "compute-kvm-1"
DEST = "compute-kvm-2"  # where ``resized_server`` was moved to
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def owner_context() -> RequestContext:
    return RequestContext(user_id="alice", project_id="demo", roles=["member", "reader"])


def fault(response: Any) -> tuple[str, int, str]:
    """(fault key, code in body, message) of a Nova fault body."""
    body = response.get_json()
    assert isinstance(body, dict) and len(body) == 1, body
    (key, inner), = body.items()
    return key, inner["code"], inner["message"]


@pytest.fixture
def service(store: Store, fleet: SimulatedFleet, enqueuer: Any, settings: Settings) -> ComputeService:
    return ComputeService(store, enqueuer, settings)


@pytest.fixture
def make_app(service: ComputeService, settings: Settings) -> Callable[..., Flask]:
    """Build the app with some settings changed, e.g. ``make_app(api={"reset_network_removed": True})``."""
    def build(**changes: Any) -> Flask:
        updated = settings
        for group, values in changes.items():
            section = getattr(updated, group).model_copy(update=values)
            updated = updated.model_copy(update={group: section})
        service.settings = updated
        return create_app(updated, service)

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def engine(store: Store, fleet: SimulatedFleet, settings: Settings) -> Engine:
    """The in-process engine: ``engine.drain()`` runs what the API queued, as workers would."""
    return build_engine(store, fleet, settings)


@pytest.fixture
def engine_client(engine: Engine, settings: Settings) -> FlaskClient:
    """A client whose service queues into ``engine``."""
    return create_app(settings, engine.service).test_client()


@pytest.fixture
def make_server(service: ComputeService) -> Callable[..., Instance]:
    def create(name: str = "vm", ctx: RequestContext | None = None, **kwargs: Any) -> Instance:
        return create_server(service, ctx or owner_context(), name=name, flavor_id="1",
                                     image_id=kwargs.pop("image_id", IMAGE_ID), **kwargs)

    return create


def activate(store: Store, instance_id: str, host: str = HOST, **changes: Any) -> Instance:
    """Leave the server as a finished create flow would: ACTIVE on ``host`` with its resources claimed."""
    def mutate(inst: Instance) -> None:
        inst.host = host
        inst.node = host
        inst.vm_state = VmState.ACTIVE
        inst.task_state = None
        inst.power_state = PowerState.RUNNING
        inst.launched_at = utcnow()
        for key, value in changes.items():
            setattr(inst, key, value)

    inst = store.update_instance(instance_id, mutate)
    store.claim_resources(host, instance_id, inst.flavor)
    return inst


@pytest.fixture
def active_server(make_server: Callable[..., Instance], store: Store) -> Instance:
    return activate(store, make_server("active-vm").id)


@pytest.fixture
def build_server(make_server: Callable[..., Instance]) -> Instance:
    return make_server("building-vm")


@pytest.fixture
def resized_server(store: Store, active_server: Instance) -> Instance:
    """VERIFY_RESIZE on DEST, moved from HOST: claims on both, a finished cold migration."""
    store.create_migration(Migration(
        instance_uuid=active_server.id, migration_type="migration", status="finished", source_compute=HOST,
        source_node=HOST, dest_compute=DEST, dest_node=DEST, old_instance_type_id="1", new_instance_type_id="1",
        user_id="admin", project_id="admin", request_id="req-00000000-0000-4000-8000-000000000001"))
    store.claim_resources(DEST, active_server.id, active_server.flavor)
    return set_fields(store, active_server.id, vm_state=VmState.RESIZED, host=DEST, node=DEST)


def set_fields(store: Store, instance_id: str, **changes: Any) -> Instance:
    def mutate(inst: Instance) -> None:
        for key, value in changes.items():
            setattr(inst, key, value)

    return store.update_instance(instance_id, mutate)


def post_action(client: FlaskClient, server_id: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(f"/v2.1/servers/{server_id}/action", json=body, headers=ADMIN if headers is None else headers)


def show(client: FlaskClient, server: Instance, headers: dict[str, str] = ADMIN) -> dict[str, Any]:
    return client.get(f"/v2.1/servers/{server.id}", headers=headers).get_json()["server"]


def migration_of(store: Store, server: Instance) -> Migration:
    [migration] = store.list_migrations(server.id)
    return migration


# ---- migration records, made the way the service makes them, and the per-migration calls ----------------
def start_live(client: Any, store: Any, server_id: str) -> Migration:
    response = post_action(client, server_id, {"os-migrateLive": {"host": None, "block_migration": "auto"}},
                           {**ADMIN, **mv("2.34")})
    assert response.status_code == 202
    return store.list_migrations(server_id)[0]


def set_status(store: Any, migration: Migration, status: str, **fields: Any) -> Migration:
    """Put a migration in any status, as the tests of reads need; flows may only move along the table."""
    record = store.get_migration(migration.id)
    updated = record.model_copy(update={"status": status, **fields})
    store.overwrite_migration(updated)
    return updated


def cold_record(store: Any, instance_id: str, status: str = "finished", **fields: Any) -> Migration:
    values = {"source_compute": HOST, "source_node": HOST, "dest_compute": "compute-kvm-2",
              "dest_node": "compute-kvm-2", "old_instance_type_id": "1", "new_instance_type_id": "1",
              "user_id": "admin", "project_id": "demo", **fields}
    return store.create_migration(Migration(instance_uuid=instance_id, migration_type="migration", status=status,
                                            **values))


@pytest.fixture
def running(client, store, active_server) -> Migration:
    migration = start_live(client, store, active_server.id)
    return set_status(store, migration, "running", dest_compute="compute-kvm-2", dest_node="compute-kvm-2",
                      dest_host="192.0.2.12", memory_total_bytes=1024, memory_processed_bytes=256,
                      memory_remaining_bytes=768)


def force(client: Any, server_id: str, migration_id: Any, body: Any = None, version: str = "2.22",
          headers: dict[str, str] = ADMIN) -> Any:
    """POST /servers/{id}/migrations/{id}/action {"force_complete": null}."""
    body = {"force_complete": None} if body is None else body
    return client.post(f"/v2.1/servers/{server_id}/migrations/{migration_id}/action", json=body,
                       headers={**headers, **mv(version)})


def abort(client: Any, server_id: str, migration_id: Any, version: str = "2.24",
          headers: dict[str, str] = ADMIN) -> Any:
    """DELETE /servers/{id}/migrations/{id}."""
    return client.delete(f"/v2.1/servers/{server_id}/migrations/{migration_id}", headers={**headers, **mv(version)})
