"""The worker's log lines (tasks/flow.py) and the CLI's formats (workers/logs.py)."""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from compute import log_context
from compute.actions.create_server import create_server
from compute.instance_actions import CREATE, LIVE_MIGRATION
from compute.settings import Settings
from tests.support.contexts import IMAGE_ID, demo_ctx
from tests.support.engine import Engine
from tests.unit.live_migration_helpers import boot_on_source, migrate, slow_copy
from workers import logs

FLOW_LOGGER = "tasks.flow"


def flow_records(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == FLOW_LOGGER and r.levelno >= level]


def test_each_step__is_one_info_line_with_request_action_server_step_and_worker(
        engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=IMAGE_ID)
    run = engine.store.get_run(ctx.request_id)
    names = [step.name for step in engine.runner.flows[CREATE].steps(run)]
    with caplog.at_level(logging.INFO, logger=FLOW_LOGGER):
        engine.drain()
    step_lines = [r for r in flow_records(caplog) if getattr(r, "step", None)]
    assert [r.step for r in step_lines] == names
    for record in step_lines:
        assert (record.request_id, record.action, record.server_id, record.outcome) == (
            ctx.request_id, CREATE, inst.id, "done")
        assert record.worker and ":" in record.worker and record.duration_ms >= 0
        assert record.getMessage() == f"step {record.step} done in {record.duration_ms / 1000:.3f}s"
    [ended] = [r for r in flow_records(caplog) if not getattr(r, "step", None)]
    assert (ended.request_id, ended.outcome) == (ctx.request_id, "succeeded")


def test_waiting__logs_nothing_at_info(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """A long action wakes several times; at INFO it is still one line per step and one at its end."""
    inst = boot_on_source(engine)
    slow_copy(engine)
    request_id, _ = migrate(engine, inst)
    run = engine.store.get_run(request_id)
    steps = len(engine.runner.flows[LIVE_MIGRATION].steps(run))
    with caplog.at_level(logging.DEBUG, logger=FLOW_LOGGER):
        outcomes = engine.drain()
    assert outcomes.count("waiting") >= 2
    assert len(flow_records(caplog)) == steps + 1
    waits = [r for r in caplog.records if r.name == FLOW_LOGGER and getattr(r, "outcome", None) == "waiting"]
    assert len(waits) == outcomes.count("waiting") and {r.levelno for r in waits} == {logging.DEBUG}


def test_a_failed_step__is_a_warning_with_its_reason_and_fields(engine: Engine,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    engine.fleet.add_fault("spawn", mode="fail", message="libvirt said no")
    ctx = demo_ctx()
    create_server(engine.service, ctx, name="vm", flavor_id="2", image_id=IMAGE_ID)
    with caplog.at_level(logging.INFO, logger=FLOW_LOGGER):
        engine.drain()
    [failed] = [r for r in flow_records(caplog, logging.WARNING) if getattr(r, "step", None)]
    assert (failed.request_id, failed.step, failed.outcome) == (ctx.request_id, "SpawnOnHost", "failed")
    assert "libvirt said no" in failed.getMessage()
    [ended] = [r for r in flow_records(caplog, logging.WARNING) if not getattr(r, "step", None)]
    assert ended.outcome == "failed" and ended.action == CREATE


# ---- formats -------------------------------------------------------------------------------------------
def a_record(**fields: object) -> logging.LogRecord:
    record = logging.LogRecord("tasks.flow", logging.INFO, __file__, 1, "step %s done", ("Spawn",), None)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


def test_text_format__appends_the_fields_as_key_value() -> None:
    line = logs.TextFormatter(logs.TEXT_FORMAT).format(a_record(request_id="req-1", step="Spawn", duration_ms=1.5))
    assert line.endswith("INFO tasks.flow step Spawn done request_id=req-1 step=Spawn duration_ms=1.5")


def test_json_format__is_one_object_per_line_with_the_fields_as_keys() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = a_record(request_id="req-1", action="create", server_id="s-1", step="Spawn", worker="h:1")
        record.exc_info = sys.exc_info()
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    body = json.loads(line)
    assert {k: body[k] for k in ("level", "logger", "message", "request_id", "action", "server_id", "step",
                                 "worker")} == {
        "level": "INFO", "logger": "tasks.flow", "message": "step Spawn done", "request_id": "req-1",
        "action": "create", "server_id": "s-1", "step": "Spawn", "worker": "h:1"}
    assert body["time"].endswith("+00:00") and "RuntimeError: boom" in body["exc_info"]


def test_context_filter__gives_every_line_the_bound_request_id() -> None:
    record = a_record()
    with log_context.bound(request_id="req-9", action="create"):
        logs.ContextFilter().filter(record)
    assert (record.request_id, record.action) == ("req-9", "create")
    explicit = a_record(request_id="req-own")
    with log_context.bound(request_id="req-9"):
        logs.ContextFilter().filter(explicit)
    assert explicit.request_id == "req-own"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET_AT_INFO}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging__json_by_config_and_celerys_per_delivery_lines_quiet(
        capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging(Settings(logging={"format": "json"}), level="INFO")
    with log_context.bound(request_id="req-5"):
        logging.getLogger("compute_actions.test").info("hello %s", "there")
    logging.getLogger("celery.app.trace").info("Task create[req-5:0] succeeded in 0.01s: 'done'")
    lines = capsys.readouterr().err.strip().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["hello there"]
    assert json.loads(lines[0])["request_id"] == "req-5"


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging__debug_keeps_celerys_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure_logging(Settings(), level="DEBUG")
    logging.getLogger("celery.app.trace").info("Task create[req-5:0] succeeded")
    assert "Task create[req-5:0] succeeded" in capsys.readouterr().err


def test_settings__logging_format_is_text_or_json() -> None:
    assert Settings().logging.format == "text"
    with pytest.raises(ValueError):
        Settings(logging={"format": "xml"})


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging__per_logger_levels_open_one_logger_at_debug(
        capsys: pytest.CaptureFixture[str]) -> None:
    delivery = logging.getLogger("workers.celery_app")
    old = delivery.level
    try:
        logs.configure_logging(Settings(logging={"levels": {"workers.celery_app": "debug"}}), level="INFO")
        delivery.debug("action req-7 wake 2: waiting")
        logging.getLogger("compute_actions.other").debug("not this one")
        err = capsys.readouterr().err
        assert "action req-7 wake 2: waiting" in err
        assert "not this one" not in err
    finally:
        delivery.setLevel(old)


def test_settings__logging_levels_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPUTE_ACTIONS_LOGGING__LEVELS", '{"workers.celery_app": "DEBUG"}')
    assert Settings().logging.levels == {"workers.celery_app": "DEBUG"}
