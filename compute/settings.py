"""The one configuration object.

Precedence (highest first): explicit keyword overrides, environment variables
(``COMPUTE_ACTIONS_<GROUP>__<OPTION>``), the TOML file named by
``COMPUTE_ACTIONS_CONFIG`` (default ``config/compute-actions.toml``), then the
defaults below. Group and option names follow Nova's where Nova has one.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "config"


class RedisOptions(BaseModel):
    store_url: str = "redis://127.0.0.1:6379/1"
    broker_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "ca:"


class ApiOptions(BaseModel):
    max_limit: int = 1000
    max_body_bytes: int = 256 * 1024
    auth_strategy: Literal["noauth2", "keystone"] = "noauth2"
    # keystonemiddleware auth_token options for auth_strategy "keystone" (www_authenticate_uri, ...).
    keystone_authtoken: dict[str, Any] = {}
    # Nova removed resetNetwork in 23.0.0 (410 Gone); the seed documents 202.
    reset_network_removed: bool = False
    # Nova's rpc_response_timeout: how long an os-migrateLive below 2.34 waits for its pre-checks.
    rpc_response_timeout: float = 60.0
    # Base URL used in links and Location headers when set (else the request's own URL).
    public_endpoint: str | None = None


class OsloPolicyOptions(BaseModel):
    policy_file: str | None = None


class ConductorOptions(BaseModel):
    migrate_max_retries: int = -1


class SchedulerOptions(BaseModel):
    max_attempts: int = 3


class LibvirtOptions(BaseModel):
    """Nova's [libvirt] live-migration knobs, applied to the simulated fleet."""

    # Seconds per GiB of RAM + disk to copy before the timeout action is taken; 0 disables.
    live_migration_completion_timeout: int = 800
    live_migration_timeout_action: Literal["abort", "force_complete"] = "abort"


class EngineOptions(BaseModel):
    queue: str = "compute-actions"
    # A worker holding an action renews this lease at every step.
    lease_ttl_seconds: float = 30.0
    # Seconds between reaper sweeps; each sweep is safe to run in many processes at once.
    reaper_interval_seconds: float = 5.0
    # An accepted action whose first delivery has not started after this long is re-enqueued.
    start_grace_seconds: float = 30.0
    # After this many reaps an action is failed with a recorded reason instead of resumed.
    max_reaps: int = 3
    # Polling period for simulated long operations (re-enqueued with a countdown).
    poll_interval_seconds: float = 0.5
    visibility_timeout_seconds: int = 3600


class FleetOptions(BaseModel):
    fleet_file: str = str(CONFIG_DIR / "fleet.yaml")
    # Multiplies every simulated operation duration (tests use small values).
    duration_scale: float = 1.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COMPUTE_ACTIONS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    host: str = "compute-actions"
    # Seconds after which a resized (VERIFY_RESIZE) server is confirmed automatically; 0 = never.
    resize_confirm_window: int = 0
    # How often periodic tasks (auto-confirm) run in each worker.
    periodic_interval_seconds: float = 60.0
    redis: RedisOptions = RedisOptions()
    api: ApiOptions = ApiOptions()
    oslo_policy: OsloPolicyOptions = OsloPolicyOptions()
    conductor: ConductorOptions = ConductorOptions()
    scheduler: SchedulerOptions = SchedulerOptions()
    libvirt: LibvirtOptions = LibvirtOptions()
    engine: EngineOptions = EngineOptions()
    fleet: FleetOptions = FleetOptions()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("COMPUTE_ACTIONS_CONFIG", str(CONFIG_DIR / "compute-actions.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if Path(config_file).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return Settings()
