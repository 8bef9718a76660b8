"""``compute_actions_queue_depth`` on the real brokers: what the API's enqueuer published and no worker took.

On Redis it is the LLEN of kombu's lists for the queue; on RabbitMQ a passive ``queue_declare``'s
message count on a connection of its own. A broker that does not answer leaves the family out
within the probe's timeout (the scrape still answers); the in-process broker has no such gauge.
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from tests.integration.conftest import BOTH_BROKERS, Namespace
from tests.support.metrics import scraped_families
from tests.support.wait import wait_for
from workers.runtime import Runtime

pytestmark = [pytest.mark.redis, pytest.mark.integration]

ADMIN = {"X-Auth-Token": "admin:admin"}
# The probe's timeout is 0.3 s; a connect refused is answered at once. Bounded far above both.
UNREACHABLE_SCRAPE_SECONDS = 3.0


def queue_depth(client: FlaskClient, queue: str) -> float | None:
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    samples = scraped_families(response.get_data(as_text=True)).get("compute_actions_queue_depth", [])
    found = [v for _name, labels, v in samples if labels.get("queue") == queue]
    return found[0] if found else None


@BOTH_BROKERS
def test_queue_depth__counts_what_was_published_and_not_taken(namespace: Namespace, runtime: Runtime) -> None:
    client = create_app(namespace.settings, runtime.service).test_client()
    for wake in range(3):
        runtime.enqueuer.enqueue(f"req-depth-{namespace.token}", wake, action="reboot", server_id="srv-1")
    wait_for(lambda: namespace.queue_length() == 3, 10, "the broker to hold the three deliveries", interval=0.05)
    assert queue_depth(client, namespace.queue) == 3
    namespace.lose_queued_messages()
    assert queue_depth(client, namespace.queue) == 0


@BOTH_BROKERS
def test_queue_depth__a_queue_not_declared_yet_is_empty(namespace: Namespace, runtime: Runtime) -> None:
    settings = namespace.settings.model_copy(update={
        "engine": namespace.settings.engine.model_copy(update={"queue": f"{namespace.queue}-never-used"})})
    assert queue_depth(create_app(settings, runtime.service).test_client(), f"{namespace.queue}-never-used") == 0


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:1//", "redis://127.0.0.1:1/0"])
def test_queue_depth__a_broker_that_does_not_answer_leaves_it_out(namespace: Namespace, runtime: Runtime,
                                                                  url: str) -> None:
    runtime.service.enqueuer = SimpleNamespace(app=SimpleNamespace(conf=SimpleNamespace(broker_url=url)))  # type: ignore[assignment]
    client = create_app(namespace.settings, runtime.service).test_client()
    started = time.monotonic()
    assert queue_depth(client, namespace.queue) is None
    assert time.monotonic() - started < UNREACHABLE_SCRAPE_SECONDS
