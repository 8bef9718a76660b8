"""The port through which the API and the engine hand an action to a worker."""
from __future__ import annotations

from typing import Protocol


class Enqueuer(Protocol):
    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0, *,
                action: str, server_id: str) -> None:
        """Queue one delivery of the action; raises compute.errors.QueueUnavailable.

        ``action`` (the flow's name, Nova's action string) and ``server_id`` say what the
        delivery is about where the queue is watched (Flower names a task by its action
        and finds it by server id); the delivery itself reads everything from the store.
        """
