"""config/alerts.yml: a Prometheus rule file whose every expression names a series we export."""
from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from api.views.metrics import StoreCollector
from compute.settings import CONFIG_DIR
from compute.store import Store
from fleet.simulator import SimulatedFleet
from workers.metrics import PrometheusTelemetry

ALERTS = CONFIG_DIR / "alerts.yml"
SERIES = re.compile(r"\b(compute_actions_[a-z_]+)\b")
DURATION = re.compile(r"^\d+[smhdw]$")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_series(store: Store) -> set[str]:
    """The sample names a scrape can hold: the Prometheus families, and the store's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    PrometheusTelemetry(registry)
    registry.register(StoreCollector(store, queue_depth=lambda: 0, queue="q"))
    return {family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert set(document) == {"groups"}
    found = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        found.extend(group["rules"])
    return found


def test_every_rule__is_an_alert_in_rule_file_form() -> None:
    names = []
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"]) and isinstance(rule["expr"], str)
        assert "for" not in rule or DURATION.match(rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]
        expr = rule["expr"]
        for opening, closing in ("()", "[]", "{}"):
            assert expr.count(opening) == expr.count(closing), (rule["alert"], opening)
        names.append(rule["alert"])
    assert len(names) == len(set(names))


def test_every_expression__names_only_series_we_export(store: Store, fleet: SimulatedFleet) -> None:
    exported = exported_series(store)
    used = {name for rule in rules() for name in SERIES.findall(rule["expr"])}
    assert used and used <= exported, used - exported


def test_the_alerts_asked_for__are_there(store: Store, fleet: SimulatedFleet) -> None:
    """No live workers, overdue actions for 5 minutes, failure ratio, a growing queue, the 5xx rate."""
    by_series: dict[str, list[dict[str, Any]]] = {}
    for rule in rules():
        for name in set(SERIES.findall(rule["expr"])):
            by_series.setdefault(name, []).append(rule)
    assert "compute_actions_live_workers" in by_series
    assert any(r.get("for") == "5m" and "> 0" in r["expr"] for r in by_series["compute_actions_overdue_actions"])
    assert any('result="failed"' in r["expr"] for r in by_series["compute_actions_actions_ended_total"])
    assert any("deriv(" in r["expr"] for r in by_series["compute_actions_queue_depth"])
    assert any('code=~"5.."' in r["expr"] for r in by_series["compute_actions_http_requests_total"])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) is not installed")
def test_promtool__accepts_the_file() -> None:
    result = subprocess.run(["promtool", "check", "rules", str(ALERTS)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
