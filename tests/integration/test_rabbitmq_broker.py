"""RabbitMQ as the broker, as Celery supports it: a quorum queue, countdowns by native delayed delivery.

The engine's own guarantees on RabbitMQ (crash, redelivery, duplicates, a lost message) are
the ``[rabbitmq]`` cases of test_crash_recovery.py; here what the wiring itself promises.
"""
from __future__ import annotations

import pytest
from kombu import Connection

from tests.integration.conftest import Namespace, StartWorker
from tests.integration.test_crash_recovery import (
    assert_created_once,
    boot,
    wait_finished,
)
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]


@pytest.mark.parametrize("broker_kind", ["rabbitmq"])
def test_the_queue_is_a_quorum_queue_and_waits_go_through_native_delayed_delivery(
        namespace: Namespace, runtime: Runtime, start_worker: StartWorker) -> None:
    runtime.fleet.set_durations({"spawn": 20.0})  # 2 s of wall time at scale 0.1: the build waits on it
    worker = start_worker("only")
    inst, rid = boot(runtime)
    run = wait_finished(runtime.store, rid)

    assert run.wake >= 1  # it waited, each wait a countdown message
    assert_created_once(runtime, inst.id, rid)
    log = worker.log()
    assert "Global QoS is disabled" in log  # Celery saw the quorum queue
    assert "direct exchange" not in log and "Failed to setup delayed delivery" not in log, log
    # Declared again as a classic queue, RabbitMQ refuses: it is a quorum queue.
    with (Connection(namespace.settings.redis.broker_url, connect_timeout=5) as connection,
          pytest.raises(connection.channel_errors, match="x-queue-type")):
        connection.channel().queue_declare(queue=namespace.queue, durable=True, auto_delete=False,
                                           arguments={"x-queue-type": "classic"})
