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
