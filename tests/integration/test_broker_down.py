"""A broker that refuses the publish, on the real stack: the service raises QueueUnavailable quickly
and leaves the store as it was (no action, run, events, lease or server).
"""
from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from compute import errors
from compute.actions.change_password import change_password
from compute.actions.create_server import create_server
from compute.states import VmState
from compute.store import Store
from tests.integration.conftest import Namespace, put_active_instance
from tests.integration.test_crash_recovery import usage_by_host
from tests.support.contexts import IMAGE_ID, demo_ctx
from workers.runtime import Runtime, build_runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]


# ---- the broker refuses the message -----------------------------------------------------------------
def closed_port() -> int:
    """A loopback port nothing listens on (bound and released, so nobody holds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call_within(seconds: float, fn: Any, *args: Any, **kwargs: Any) -> BaseException | None:
    """Run ``fn`` in a thread; fail if it has not returned or raised after ``seconds``."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} still blocked after {seconds} s with the broker down"
    return outcome.get("error")


@pytest.fixture
def broker_down_runtime(namespace: Namespace, runtime: Runtime) -> Any:
    """The API side with the real store but a broker URL on which nothing listens."""
    rt = build_runtime(namespace.settings, broker_url=f"redis://127.0.0.1:{closed_port()}/0")
    yield rt
    rt.celery.close()
    rt.store.close()


def assert_no_trace_of(store: Store, request_id: str) -> None:
    assert store.get_action(request_id) is None
    assert store.get_run(request_id) is None
    assert store.list_events(request_id) == []
    assert store.lease_holder(request_id) is None
    assert store.active_run_count() == 0


def test_broker_down__change_password_raises_and_changes_nothing(
        namespace: Namespace, runtime: Runtime, broker_down_runtime: Runtime) -> None:
    inst = put_active_instance(runtime.store)
    ctx = demo_ctx()
    error = call_within(30, change_password, broker_down_runtime.service, ctx, inst, "s3cret")
    assert isinstance(error, errors.QueueUnavailable), repr(error)

    after = runtime.store.get_instance(inst.id)
    assert after is not None
    assert (after.vm_state, after.task_state, after.password_set_at) == (VmState.ACTIVE, None, None)
    assert runtime.store.list_actions(inst.id) == []
    assert_no_trace_of(runtime.store, ctx.request_id)
    assert namespace.queue_length() == 0


def test_broker_down__create_raises_and_leaves_no_server(
        namespace: Namespace, runtime: Runtime, broker_down_runtime: Runtime) -> None:
    ctx = demo_ctx()
    error = call_within(30, create_server, broker_down_runtime.service, ctx, name="vm", flavor_id="2",
                        image_id=IMAGE_ID)
    assert isinstance(error, errors.QueueUnavailable), repr(error)

    assert runtime.store.list_instances() == []
    assert runtime.store.scan_keys("instance:*") == []
    assert_no_trace_of(runtime.store, ctx.request_id)
    assert set(usage_by_host(runtime.store).values()) == {(0, 0, 0, 0)}
    assert namespace.queue_length() == 0
