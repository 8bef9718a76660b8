"""The Celery wiring: one task that delivers an action to the flow engine, and the enqueuer.

Settings follow ../shared/design/celery-redis-notes.md (measured): late acks and
reject-on-worker-lost so that a killed worker's message comes back, prefetch 1, task
events on for Flower, no result backend (the instance action in Redis is the result).

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
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer
from kombu.exceptions import OperationalError

from compute import errors
from compute.settings import Settings

LOG = logging.getLogger(__name__)

RUN_ACTION = "compute_actions.run_action"


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
    vt = settings.engine.visibility_timeout_seconds
    app = Celery("compute_actions", broker=broker_url or settings.redis.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=settings.engine.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_time_limit=max(60, vt - 60),
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_consumer=BrokerLossConsumer,
        broker_transport_options={
            "visibility_timeout": vt,
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5,
            "socket_timeout": 30,
            "health_check_interval": 25,
        },
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def register_run_action(app: Celery, deliver: Callable[[str, int], str]) -> None:
    """Bind the task name to ``deliver`` (the flow runner of this process)."""

    @app.task(name=RUN_ACTION, acks_late=True, reject_on_worker_lost=True)
    def run_action(request_id: str, wake: int = 0) -> str:
        outcome = deliver(request_id, wake)
        LOG.info("action %s wake %s: %s", request_id, wake, outcome)
        return outcome


class CeleryEnqueuer:
    """compute.queue.Enqueuer over Celery; a refused publish becomes QueueUnavailable."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue

    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0) -> None:
        try:
            self.app.send_task(
                RUN_ACTION, args=[request_id, wake], queue=self.queue,
                countdown=countdown or None, task_id=f"{request_id}:{wake}",
            )
        except OperationalError as exc:
            raise errors.QueueUnavailable(f"The task queue is unavailable: {exc}") from exc
