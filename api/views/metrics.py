"""``GET /metrics``: Prometheus text read from Redis at scrape time.

Every number comes from the store, not from process memory, so any API process answers
for the whole deployment (gunicorn's workers share nothing else). Unauthenticated, like
most exporters: expose it on the management network only.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from api import current
from compute.states import server_status
from compute.store import Store

bp = Blueprint("metrics", __name__)


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


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(current.service().store))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
