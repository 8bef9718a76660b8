"""The port through which the API, the service and the engine report what they count and time.

The domain and the flows call ``observer()``; the default observer records nothing, so a
library user or a test that does not care pays nothing. The composition root installs the
Prometheus one (workers/metrics.py) before it serves or runs anything. Kept free of any
metrics library so that compute/ and tasks/ name only what happened, not how it is exported.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

# A scheduler rejection reason starts with the filter that made it ("ComputeFilter: service is down").
_FILTER_PREFIX = re.compile(r"^(\w+Filter):")
# A host skipped before any filter ran (already tried, excluded, or the server's own host).
UNFILTERED = "excluded"


class Telemetry:
    """What is reported. Every method is a no-op here; see workers/metrics.py for the families."""

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One API request answered; ``route`` is its URL rule, never the raw path."""

    def action_accepted(self, action: str) -> None:
        """The API accepted an action and queued its flow."""

    def action_ended(self, action: str, result: str, seconds: float) -> None:
        """A flow run ended: ``result`` "succeeded" or "failed", ``seconds`` since it was accepted."""

    def step_finished(self, action: str, step: str, seconds: float) -> None:
        """A forward step of an action's flow finished, ``seconds`` after it became the current one."""

    def host_rejected(self, filter_name: str) -> None:
        """The scheduler turned a host down; ``filter_name`` from :func:`filter_of`."""

    def reaper_rescued(self, *, abandoned: bool) -> None:
        """The reaper took over a stale action: resumed it, or gave up on it (it will roll back)."""


_observer: Telemetry = Telemetry()


def observer() -> Telemetry:
    return _observer


def install(telemetry: Telemetry) -> Telemetry:
    """Make ``telemetry`` the process's observer; returns the one it replaces."""
    global _observer
    previous, _observer = _observer, telemetry
    return previous


def filter_of(reason: str) -> str:
    """The filter a rejection reason names, or :data:`UNFILTERED` for a host no filter looked at."""
    found = _FILTER_PREFIX.match(reason)
    return found.group(1) if found else UNFILTERED


def count_rejections(rejections: Mapping[str, str]) -> None:
    """Report each host a Selection turned down (the flows call this where they consume one)."""
    telemetry = observer()
    for reason in rejections.values():
        telemetry.host_rejected(filter_of(reason))
