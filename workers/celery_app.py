"""The Celery wiring: one task per action that delivers it to the flow engine, and the enqueuer.

Settings follow ../shared/design/celery-redis-notes.md (measured): late acks and
reject-on-worker-lost so that a killed worker's message comes back, prefetch 1, task
events on for Flower, no result backend (the instance action in Redis is the result).

What Flower shows (README, "Watching an action"): each delivery is a task named by its
action, Nova's string (``live-migration``, ``createBackup``: compute/instance_actions.py),
with ``[request id, wake]`` and ``{'server_id': ...}`` as arguments, so Flower's search finds
a server's deliveries. The delivery that ends an action in error raises
:class:`ActionFailed` with the action's reason: Flower shows FAILURE and the reason. It is
an expected outcome (``throws``: logged without a traceback), never retried, and its
message is acked like any other (``task_acks_on_failure_or_timeout``). A waiting or
dropped delivery succeeds with its one-word outcome. Messages queued under the single
task name used before (``compute_actions.run_action``) are still consumed; the other way
round, a worker older than these names rejects the new ones as unregistered, so upgrade the
workers before the API (a message lost so is an accepted action the reaper requeues).

Brokers: Redis (``redis://``) or RabbitMQ (``amqp://``), by the broker URL's scheme; the
in-process memory transport for ``compute-actions dev``. The engine's reliability (leases,
wake numbers, the reaper) does not depend on which. What each transport needs:

- Redis: the transport options below (visibility timeout, restore throttle, socket
  timeouts, health checks) are the Redis transport's own and are set for it only.
- RabbitMQ: a quorum queue (``x-queue-type: quorum``: replicated, durable; Celery 5.5+
  then turns global QoS off, which quorum queues refuse, ``worker_detect_quorum_queues``),
  publisher confirms so that an accepted action's message is on the broker when the API
  answers, and countdowns by Celery's native delayed delivery: a countdown message goes
  through the ``celery_delayed_*`` TTL queues the worker declares at start, so no worker
  holds an ETA message (on a quorum queue's static prefetch that would block the worker
  until the ETA). That needs a topic exchange in front of the queue, and its delays are
  whole seconds: a countdown is rounded up, never down (an early wake would find its
  operation not due and wait again). A killed worker's unacked message is requeued by
  RabbitMQ as soon as its connection closes; RabbitMQ's ``consumer_timeout`` (30 min by
  default) closes a channel whose delivery stays unacked longer, so the task time limit
  stays under it.

Surviving a Redis restart (README, "When Redis restarts"):

- The worker's consumer is :class:`BrokerLossConsumer`. Celery 5.7.0 closes the broker
  connection a second time after ``Connection.collect()`` when the connection is lost
  (celery/celery#10242, the fix for celery/celery#9705). On the Redis transport the first
  close of the task channel stops at the dead socket's ``BRPOP`` read, ``collect()`` then
  detaches the transport from the connection, and the second close tries to restore the
  unacknowledged messages through a transport that no longer has a connection:
  ``AttributeError: 'NoneType' object has no attribute 'hostname'`` in kombu's
  ``_connparams`` (the failure of celery/kombu#582 and #970), which Celery reports as an
  unrecoverable error and the worker exits. Celery 5.5 never made that second close. The
  consumer forgets the collected connection's default channel once ``collect()`` has run,
  so the second close only does what is left to do, and the worker reconnects. Nothing
  is lost: the unacknowledged messages stay in Redis's ``unacked`` hash (AOF keeps it),
  and the engine resumes their actions from their leases through the reaper without
  waiting for the visibility timeout.
- Workers run ``--without-gossip --without-mingle`` (workers/cli.py). The engine uses
  neither: gossip elects leaders and tracks peers for Celery's own remote control, and
  mingle copies revoked task ids and logical clocks between workers at start; this
  engine revokes nothing (a stale message drops itself by its wake number) and orders
  nothing by Celery's clock. Both hold fanout channels that fail to close while Redis
  is down ("Error on restarting Gossip", the kombu#582 traceback on every reconnect),
  and mingle delays every start by a broadcast round trip. Task events and worker
  heartbeats, which Flower shows, stay on.
"""
from __future__ import annotations

import logging
import math
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer
from kombu.exceptions import BatchPublishError, OperationalError

from compute import errors
from compute.settings import Settings

LOG = logging.getLogger(__name__)

# The one task name of every delivery before tasks were named by action; still consumed.
RUN_ACTION = "compute_actions.run_action"

REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+socket", "sentinel"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})
# RabbitMQ's default consumer_timeout: a delivery unacked this long gets its channel closed.
RABBITMQ_CONSUMER_TIMEOUT_SECONDS = 1800


class ActionFailed(Exception):
    """The delivery that ended its action in error; the message is the action's failure reason."""


def broker_transport(broker_url: str) -> str:
    """``redis``, ``amqp``, or the URL's own scheme (``memory`` for dev)."""
    scheme = urllib.parse.urlsplit(broker_url).scheme.lower()
    if scheme in REDIS_SCHEMES:
        return "redis"
    if scheme in AMQP_SCHEMES:
        return "amqp"
    return scheme


class BrokerLossConsumer(Consumer):
    """Celery's consumer, whose broker-loss cleanup cannot kill the worker (module docstring)."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Celery's cleanup, with ``collect()`` also forgetting the default channel it collected.

        Once ``collect()`` has returned it has closed what it could and detached the
        transport, so the ``close()`` Celery 5.7 makes next has nothing left to do; with the
        channel forgotten it does nothing, instead of reopening the dead channel through a
        transport without a connection. When ``collect()`` fails, nothing is forgotten and
        ``close()`` runs as Celery wrote it.
        """
        connection = self.connection
        if connection is not None:
            collect = connection.collect

            def collect_then_forget_default_channel(*args: Any, **kwargs: Any) -> None:
                collect(*args, **kwargs)
                connection._default_channel = None

            connection.collect = collect_then_forget_default_channel
        super().on_connection_error_after_connected(exc)


def make_celery(settings: Settings, broker_url: str | None = None) -> Celery:
    url = broker_url or settings.redis.broker_url
    app = Celery("compute_actions", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.engine.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,  # a failed action's message is done with, not redelivered
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_consumer=BrokerLossConsumer,
        task_serializer="json",
        accept_content=["json"],
        **transport_conf(url, settings.engine.visibility_timeout_seconds),
    )
    return app


def transport_conf(broker_url: str, visibility_timeout: float) -> dict[str, Any]:
    """The settings of the broker's own transport (module docstring, "Brokers")."""
    transport = broker_transport(broker_url)
    if transport == "redis":
        return {
            "task_time_limit": max(60, visibility_timeout - 60),
            "broker_transport_options": {
                "visibility_timeout": visibility_timeout,
                "unacked_restore_throttle": 1,
                "socket_connect_timeout": 5,
                "socket_timeout": 30,
                "health_check_interval": 25,
            },
        }
    if transport == "amqp":
        return {
            "task_time_limit": max(60, min(visibility_timeout, RABBITMQ_CONSUMER_TIMEOUT_SECONDS) - 60),
            "task_default_queue_type": "quorum",
            "task_default_exchange_type": "topic",
            "worker_detect_quorum_queues": True,
            "broker_native_delayed_delivery_queue_type": "quorum",
            "broker_transport_options": {"confirm_publish": True},
        }
    return {"task_time_limit": max(60, visibility_timeout - 60)}


def register_action_tasks(app: Celery, deliver: Callable[[str, int], str],
                          failure_reason: Callable[[str], str | None], actions: Iterable[str]) -> None:
    """One task per action name, and the old single name, all bound to ``deliver`` (the flow runner).

    ``failure_reason(request_id)`` is the recorded reason of an action that ended in error.
    Not shared: Celery adds a shared task to every app created later in the process, bound to
    the first app's runner, which would make a second runtime (tests, bench) drive the first's.
    """
    for name in (*actions, RUN_ACTION):
        app.task(name=name, shared=False, acks_late=True, reject_on_worker_lost=True, throws=(ActionFailed,))(
            _delivery(name, deliver, failure_reason))


def _delivery(task_name: str, deliver: Callable[[str, int], str],
              failure_reason: Callable[[str], str | None]) -> Callable[..., str]:
    def run_action(request_id: str, wake: int = 0, server_id: str | None = None) -> str:
        outcome = deliver(request_id, wake)
        # DEBUG: a waiting action is delivered again and again; the per-step line says what moved.
        LOG.debug("%s server %s: action %s wake %s: %s", task_name, server_id, request_id, wake, outcome)
        if outcome == "error":
            raise ActionFailed(failure_reason(request_id) or f"{task_name} {request_id} ended in error")
        return outcome

    return run_action


class CeleryEnqueuer:
    """compute.queue.Enqueuer over Celery; a refused publish becomes QueueUnavailable.

    The task message and its ``task-sent`` event (``task_send_sent_event``, for Flower) go out
    through one producer batch (kombu's ``Producer.batch``): on Redis both are one pipeline, one
    round trip and one client, instead of one of each per message. Transports that cannot batch
    (RabbitMQ, the memory transport of dev) publish each at once, as before. A batch that fails
    on Redis is retried by nobody: like a publish that failed after its retries, it is a 503 and
    the accept is undone (a message that did land is then dropped by its worker, its run gone).
    """

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue
        self.whole_second_delays = broker_transport(app.conf.broker_url or "") == "amqp"

    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0, *,
                action: str, server_id: str) -> None:
        if countdown and self.whole_second_delays:
            countdown = math.ceil(countdown)
        name = action if action in self.app.tasks else RUN_ACTION
        try:
            with self.app.producer_or_acquire() as producer, producer.batch():
                self.app.send_task(
                    name, args=[request_id, wake], kwargs={"server_id": server_id}, queue=self.queue,
                    countdown=countdown or None, task_id=f"{request_id}:{wake}", producer=producer,
                )
        except (OperationalError, BatchPublishError) as exc:
            raise errors.QueueUnavailable(f"The task queue is unavailable: {exc}") from exc
