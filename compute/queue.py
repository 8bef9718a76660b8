"""The port through which the API and the engine hand an action to a worker."""
from __future__ import annotations

from typing import Protocol


class Enqueuer(Protocol):
    def enqueue(self, request_id: str, wake: int, countdown: float = 0.0) -> None:
        """Queue one delivery of the action; raises compute.errors.QueueUnavailable."""
