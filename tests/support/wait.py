"""Waiting for something that happens in another process: polling with a bounded timeout."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Generous: two noisy cores, and a celery worker takes seconds to boot on them.
WAIT_TIMEOUT = 90.0
MAX_TIMEOUT = 600.0  # no test waits longer than this for anything


def wait_for(
    predicate: Callable[[], T],
    timeout: float = WAIT_TIMEOUT,
    message: str | Callable[[], str] = "condition",
    *,
    interval: float = 0.1,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after ``timeout`` seconds.

    ``message`` says what is awaited; it may be a callable, evaluated only on timeout, that
    describes the state seen then. The timeout is always finite (at most MAX_TIMEOUT).
    """
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"wait_for timeout must be in (0, {MAX_TIMEOUT:.0f}] seconds, not {timeout!r}")
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {text} (last value: {value!r})")
        time.sleep(interval)
