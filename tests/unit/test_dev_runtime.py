"""`compute-actions dev`'s runtime: kombu's memory transport looks at its queues every few ms, not every 1 s.

The time an action takes in dev against production is measured by bench/dev_vs_production.py;
here the setting itself, and an action through the embedded worker taking the deliveries its
steps need (none spent waiting on the transport).
"""
from __future__ import annotations

import pytest

from compute.actions.create_server import create_server
from compute.actions.inject_network_info import inject_network_info
from compute.settings import CONFIG_DIR, Settings
from tests.support.contexts import IMAGE_ID, admin_ctx, demo_ctx
from tests.support.wait import wait_for
from workers.cli import DEV_POLLING_INTERVAL, build_dev_runtime, embedded_worker
from workers.runtime import Runtime


@pytest.fixture(scope="module")
def dev_settings() -> Settings:
    return Settings(fleet={"fleet_file": str(CONFIG_DIR / "fleet.yaml"), "duration_scale": 0.0})


@pytest.fixture(scope="module")
def runtime(dev_settings: Settings) -> Runtime:
    """One per module: Celery warns when a second app in the process registers the same task name."""
    return build_dev_runtime(dev_settings)


def test_the_memory_transport_polls_every_few_milliseconds(dev_settings: Settings, runtime: Runtime) -> None:
    assert DEV_POLLING_INTERVAL <= 0.01
    assert runtime.celery.conf.broker_transport_options["polling_interval"] == DEV_POLLING_INTERVAL
    # The Redis transport's own options are not given to the memory transport.
    assert "visibility_timeout" not in runtime.celery.conf.broker_transport_options
    with runtime.celery.connection_for_read() as connection:
        assert connection.transport.polling_interval == DEV_POLLING_INTERVAL


def test_an_action_in_dev_takes_one_delivery_at_zero_durations(runtime: Runtime) -> None:
    with embedded_worker(runtime, concurrency=2):
        inst = create_server(runtime.service, demo_ctx(), name="vm", flavor_id="1", image_id=IMAGE_ID)
        wait_for(lambda: runtime.store.get_instance(inst.id).vm_state == "active", 30, "the server to boot")
        ctx = admin_ctx()
        inject_network_info(runtime.service, ctx, runtime.store.get_instance(inst.id))
        wait_for(lambda: (r := runtime.store.get_run(ctx.request_id)) is not None and r.finished, 30,
                 "injectNetworkInfo to end")
    run = runtime.store.get_run(ctx.request_id)
    assert (run.status, run.deliveries) == ("done", 1)
