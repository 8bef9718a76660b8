"""``GET /metrics``: Prometheus text read from Redis at scrape time.

Every number comes from the store, not from process memory, so any API process answers
for the whole deployment (gunicorn's workers share nothing else). It names hosts and their
usage, so by default only an admin token reads it (``[metrics] access = "admin"``: 401
without a token, 403 for others); ``access = "public"`` serves it like most exporters do,
best with ``[metrics] bind``, a listener of its own on the management network.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from flask import Blueprint, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from api import auth, current
from api.errors import forbidden
from compute.states import server_status
from compute.store import Store

bp = Blueprint("metrics", __name__)

ADMIN_ONLY_MESSAGE = "Only an administrator may read the metrics."


class StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        active = GaugeMetricFamily("compute_actions_active_actions",
                                   "Actions accepted and not yet ended (queued, running or waiting)")
        active.add_metric([], self.store.active_run_count())
        yield active
        overdue = GaugeMetricFamily("compute_actions_overdue_actions",
                                    "Actions past their due time: the reaper will rescue them")
        overdue.add_metric([], len(self.store.due_runs(now, limit=10_000)))
        yield overdue
        servers = GaugeMetricFamily("compute_actions_servers", "Servers by status", labels=["status"])
        counts = Counter(server_status(i.vm_state, i.task_state) for i in self.store.list_instances()
                         if not i.deleted)
        for status, count in sorted(counts.items()):
            servers.add_metric([status], count)
        yield servers
        ram = GaugeMetricFamily("compute_actions_host_memory_mb_used", "Claimed RAM per host", labels=["host"])
        vms = GaugeMetricFamily("compute_actions_host_running_vms", "Claims per host", labels=["host"])
        for host in self.store.list_hosts():
            usage = self.store.get_usage(host.name)
            ram.add_metric([host.name], usage.memory_mb_used)
            vms.add_metric([host.name], usage.running_vms)
        yield ram
        yield vms


def authorize_scrape() -> None:
    """``[metrics] access``: "public" lets anyone read; "admin" needs an admin's token."""
    settings = current.settings()
    if settings.metrics.access == "public":
        return
    ctx = auth.context_builder(settings)(request.headers, g.request_id)  # 401 without a token
    if not ctx.is_admin:
        raise forbidden(ADMIN_ONLY_MESSAGE)


@bp.get("/metrics")
def metrics() -> Response:
    authorize_scrape()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(current.service().store))
    # content_type, not mimetype: werkzeug would add a second "; charset=utf-8" to the latter.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
