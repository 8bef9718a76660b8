"""API test fixtures: the Flask app over ComputeService on fakeredis, callers, and servers in known states.

No worker runs here: a created server stays in BUILD. ``active_server`` puts one on a
host the way the create flow would leave it (state, host, resource claim).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from compute.context import RequestContext
from compute.models import Instance, utcnow
from compute.service import ComputeService
from compute.settings import Settings
from compute.states import PowerState, VmState
from compute.store import Store
from fleet.simulator import SimulatedFleet

ADMIN = {"X-Auth-Token": "admin:admin"}
OWNER = {"X-Auth-Token": "alice:demo"}
OTHER = {"X-Auth-Token": "bob:other"}
NOBODY: dict[str, str] = {}
CALLERS = {"admin": ADMIN, "owner": OWNER, "other": OTHER, "none": NOBODY}

IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"
HOST = "compute-kvm-1"
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
def make_server(service: ComputeService) -> Callable[..., Instance]:
    def create(name: str = "vm", ctx: RequestContext | None = None, **kwargs: Any) -> Instance:
        return service.create_server(ctx or owner_context(), name=name, flavor_id="1",
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


def set_fields(store: Store, instance_id: str, **changes: Any) -> Instance:
    def mutate(inst: Instance) -> None:
        for key, value in changes.items():
            setattr(inst, key, value)

    return store.update_instance(instance_id, mutate)


def post_action(client: FlaskClient, server_id: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(f"/v2.1/servers/{server_id}/action", json=body, headers=ADMIN if headers is None else headers)
