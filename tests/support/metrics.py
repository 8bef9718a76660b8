"""Prometheus in tests: the observer installed for one test, samples read back, families parsed from a scrape."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from compute import telemetry
from workers import metrics


@pytest.fixture
def prometheus() -> Iterator[metrics.PrometheusTelemetry]:
    """The process's Prometheus observer for this test; the one before it again after."""
    previous = telemetry.observer()
    try:
        yield metrics.install()
    finally:
        telemetry.install(previous)


def sample(name: str, **labels: str) -> float:
    """A sample of this process's default registry (0 when that series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped_families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """A scrape's families by name, each with its samples (name, labels, value)."""
    return {family.name: [(s.name, s.labels, s.value) for s in family.samples]
            for family in text_string_to_metric_families(text)}
