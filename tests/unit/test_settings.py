from __future__ import annotations

from pathlib import Path

import pytest

from compute.settings import Settings


def test_settings__file_then_env_then_keywords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "ca.toml"
    config.write_text("[engine]\nmax_reaps = 7\nlease_ttl_seconds = 9.0\n[api]\nmax_limit = 5\n")
    monkeypatch.setenv("COMPUTE_ACTIONS_CONFIG", str(config))
    monkeypatch.setenv("COMPUTE_ACTIONS_API__MAX_LIMIT", "9")
    loaded = Settings(engine={"lease_ttl_seconds": 2.0})
    assert loaded.engine.max_reaps == 7
    assert loaded.api.max_limit == 9
    assert loaded.engine.lease_ttl_seconds == 2.0


def test_settings__shipped_file_keeps_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPUTE_ACTIONS_CONFIG", raising=False)
    assert Settings().model_dump() == Settings.model_construct().model_dump()


def test_worker_pool__the_setting_reaches_celery_and_a_command_line_pool_comes_after_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.cli import celery_worker_argv

    monkeypatch.setenv("COMPUTE_ACTIONS_CONFIG", "/dev/null")
    assert Settings().worker.pool == "prefork"
    monkeypatch.setenv("COMPUTE_ACTIONS_WORKER__POOL", "solo")
    argv = celery_worker_argv(Settings(), ["--pool", "prefork", "-c", "2"])
    assert argv[argv.index("--pool") + 1] == "solo"
    assert argv[-4:] == ["--pool", "prefork", "-c", "2"]  # click keeps the last --pool given
    monkeypatch.setenv("COMPUTE_ACTIONS_WORKER__POOL", "threads")
    with pytest.raises(ValueError):
        Settings()
