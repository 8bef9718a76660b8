"""The Celery wiring: one task that delivers an action to the flow engine, and the enqueuer.

Settings follow ../shared/design/celery-redis-notes.md (measured): late acks and
reject-on-worker-lost so that a killed worker's message comes back, prefetch 1, task
events on for Flower, no result backend (the instance action in Redis is the result).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery
from kombu.exceptions import OperationalError

from compute import errors
from compute.settings import Settings

LOG = logging.getLogger(__name__)

RUN_ACTION = "compute_actions.run_action"


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
