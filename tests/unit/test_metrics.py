"""workers/metrics.py over the in-memory engine: what an action, a failure, the scheduler and the reaper count.

Counters are process-wide, so each test reads the change it made (``sample`` before and after).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector

import tasks.flow
from compute import telemetry
from compute.actions.create_server import create_server
from compute.instance_actions import CREATE, LIVE_MIGRATION
from compute.settings import REPO_ROOT
from tests.support.contexts import IMAGE_ID, demo_ctx
from tests.support.crash import crash_every_time
from tests.support.engine import Engine
from tests.support.metrics import prometheus, sample  # noqa: F401 - the fixture
from tests.unit.live_migration_helpers import boot_on_source, migrate, slow_copy
from workers import metrics

pytestmark = pytest.mark.usefixtures("prometheus")


def step_names(engine: Engine, request_id: str) -> list[str]:
    run = engine.store.get_run(request_id)
    return [step.name for step in engine.runner.flows[run.flow].steps(run)]


def step_count(action: str, step: str) -> float:
    return sample("compute_actions_step_duration_seconds_count", action=action, step=step)


def test_an_action__is_accepted_each_step_timed_and_counted_as_succeeded(engine: Engine) -> None:
    accepted = sample("compute_actions_actions_accepted_total", action=CREATE)
    succeeded = sample("compute_actions_actions_ended_total", action=CREATE, result="succeeded")
    timed = sample("compute_actions_action_duration_seconds_count", action=CREATE)
    ctx = demo_ctx()
    create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=IMAGE_ID)
    names = step_names(engine, ctx.request_id)
    steps_before = {name: step_count(CREATE, name) for name in names}
    assert sample("compute_actions_actions_accepted_total", action=CREATE) == accepted + 1
    engine.drain()
    assert sample("compute_actions_actions_ended_total", action=CREATE, result="succeeded") == succeeded + 1
    assert sample("compute_actions_action_duration_seconds_count", action=CREATE) == timed + 1
    assert {name: step_count(CREATE, name) - steps_before[name] for name in names} == dict.fromkeys(names, 1)


def test_a_failed_action__counts_as_failed_not_succeeded(engine: Engine) -> None:
    failed = sample("compute_actions_actions_ended_total", action=CREATE, result="failed")
    succeeded = sample("compute_actions_actions_ended_total", action=CREATE, result="succeeded")
    engine.fleet.add_fault("spawn", mode="fail", message="libvirt said no")
    engine.boot()
    assert sample("compute_actions_actions_ended_total", action=CREATE, result="failed") == failed + 1
    assert sample("compute_actions_actions_ended_total", action=CREATE, result="succeeded") == succeeded


def test_a_step_that_waits__is_timed_from_when_it_became_current_across_deliveries(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """TransferGuest waits over several deliveries for the copy; its duration is the whole copy."""
    inst = boot_on_source(engine)
    slow_copy(engine)
    monkeypatch.setattr(tasks.flow, "time", SimpleNamespace(time=engine.fleet.clock.now))  # the simulated clock
    before_count = step_count(LIVE_MIGRATION, "TransferGuest")
    before_sum = sample("compute_actions_step_duration_seconds_sum", action=LIVE_MIGRATION, step="TransferGuest")
    started = engine.fleet.clock.now()
    request_id, _ = migrate(engine, inst)
    outcomes = engine.drain()
    assert engine.store.get_run(request_id).status == "done"
    assert outcomes.count("waiting") >= 2
    took = sample("compute_actions_step_duration_seconds_sum", action=LIVE_MIGRATION, step="TransferGuest") - before_sum
    assert step_count(LIVE_MIGRATION, "TransferGuest") == before_count + 1
    # At 100 s per GiB the copy takes minutes of simulated time; one delivery's work takes milliseconds.
    assert 100.0 <= took <= engine.fleet.clock.now() - started, took


def test_scheduler_rejections__are_counted_by_the_filter_that_made_them(engine: Engine) -> None:
    engine.fleet.set_host_state("compute-kvm-2", enabled=False)
    compute_filter = sample("compute_actions_scheduler_rejections_total", filter="ComputeFilter")
    inst = engine.boot()
    assert inst.host != "compute-kvm-2"
    assert sample("compute_actions_scheduler_rejections_total", filter="ComputeFilter") == compute_filter + 1


def test_filter_of__names_the_filter_or_says_excluded() -> None:
    assert telemetry.filter_of("ComputeFilter: service is down") == "ComputeFilter"
    assert telemetry.filter_of("ResourceFilter: not enough RAM") == "ResourceFilter"
    assert telemetry.filter_of("already tried or excluded") == telemetry.UNFILTERED


def test_reaper__counts_each_resume_and_the_abandonment(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    resumed = sample("compute_actions_reaper_rescues_total", outcome="resumed")
    abandoned = sample("compute_actions_reaper_rescues_total", outcome="abandoned")
    failed = sample("compute_actions_actions_ended_total", action=CREATE, result="failed")
    crash_every_time(monkeypatch, type(engine.fleet), "spawn")
    ctx = demo_ctx()
    create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=IMAGE_ID)
    engine.crash_until_abandoned(ctx.request_id)
    max_reaps = engine.settings.engine.max_reaps
    assert sample("compute_actions_reaper_rescues_total", outcome="resumed") == resumed + max_reaps
    assert sample("compute_actions_reaper_rescues_total", outcome="abandoned") == abandoned + 1
    assert sample("compute_actions_actions_ended_total", action=CREATE, result="failed") == failed + 1


def test_a_metric_that_cannot_be_written__does_not_fail_the_action(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics.install().step_duration, "labels", full_disk)
    assert engine.boot().vm_state == "active"


# ---- multiprocess mode --------------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    from workers import metrics
    observer = metrics.install()
    observer.action_ended("live-migration", "succeeded", float(sys.argv[1]))
    observer.http_request("GET", "/v2.1/servers", 200, 0.01)
""")


def test_multiprocess__two_processes_writing_one_folder_add_up(tmp_path: Path) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    for seconds in ("3", "40"):
        subprocess.run([sys.executable, "-c", WRITER, seconds], env=env, check=True, timeout=60)
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process and metric type
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    ended = {"action": "live-migration", "result": "succeeded"}
    assert registry.get_sample_value("compute_actions_actions_ended_total", ended) == 2
    assert registry.get_sample_value("compute_actions_action_duration_seconds_sum", {"action": "live-migration"}) == 43
    assert registry.get_sample_value("compute_actions_action_duration_seconds_bucket",
                                     {"action": "live-migration", "le": "5.0"}) == 1
    assert registry.get_sample_value("compute_actions_http_requests_total",
                                     {"method": "GET", "route": "/v2.1/servers", "code": "200"}) == 2


def test_configure_multiprocess__empties_the_given_folder_or_makes_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # restored after: this process stays single
    stale = tmp_path / "counter_123.db"
    stale.write_bytes(b"old run")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    assert metrics.configure_multiprocess("api") == (str(tmp_path), False)
    assert not stale.exists()
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    made, created = metrics.configure_multiprocess("worker")
    try:
        assert created and Path(made).is_dir() and os.environ[metrics.MULTIPROC_ENV] == made
        assert "worker" in Path(made).name
    finally:
        metrics.remove_multiprocess_dir(made)
    assert not Path(made).exists()
