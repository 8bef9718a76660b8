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
    # The store client's limits, so that with the store unreachable a request fails (503) within
    # about a second instead of redis-py's 5 s timeouts and 10 retries with backoff.
    socket_connect_timeout: float = 0.5
    socket_timeout: float = 0.5
    # Retries, without backoff, of a command whose connection failed (one covers a dropped
    # connection); a timeout is not retried, so a store that hangs costs one socket_timeout.
    retries: int = 1

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url(store_url, ...)`` with the limits above."""
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.retry import Retry

        return {"socket_connect_timeout": self.socket_connect_timeout, "socket_timeout": self.socket_timeout,
                "retry": Retry(NoBackoff(), self.retries, supported_errors=(RedisConnectionError,))}


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
    # ``compute-actions api`` (gunicorn gthread): threads per worker, and how long a client may leave
    # a connection silent while sending its request (or not read its answer) before it is closed.
    threads: int = 32
    client_timeout: float = 5.0


class MetricsOptions(BaseModel):
    """``GET /metrics``: who may read it, and an optional listener of its own for ``compute-actions api``."""

    # "admin": an admin token is needed (401 without a token, 403 for others); "public": anyone.
    access: Literal["admin", "public"] = "admin"
    # "host:port": serve /metrics there only (and not on the API's bind).
    bind: str | None = None
    # "host:port": each ``compute-actions worker`` serves its own counters and histograms there
    # (every process of that worker added up; no token, like most exporters). None: no exporter.
    worker_bind: str | None = None


class LoggingOptions(BaseModel):
    """The CLI's log lines (workers/logs.py); the level is ``COMPUTE_ACTIONS_LOG_LEVEL`` (default INFO)."""

    # "text": one human line each, the request's fields appended as key=value; "json": one JSON object a line.
    format: Literal["text", "json"] = "text"
    # Per-logger levels over the global one, e.g. {"workers.celery_app" = "DEBUG"} for the
    # one line per delivery (request id, wake, outcome) without Celery's own DEBUG chatter.
    levels: dict[str, str] = {}


class HealthOptions(BaseModel):
    """Worker heartbeats and the API's ``/readyz`` (workers/heartbeat.py, api/views/health.py)."""

    # Each worker process writes its heartbeat this often; it expires heartbeat_ttl_seconds after
    # the last one, and a worker counts as alive while it has not.
    heartbeat_interval_seconds: float = 10.0
    heartbeat_ttl_seconds: float = 30.0
    # How long /readyz waits for each of the store and the broker before calling it down.
    probe_timeout_seconds: float = 0.3
    # /readyz answers 503 with fewer live workers than this.
    min_workers: int = 1


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
    # A wait whose end is unknown (a driver that gives no due time, another flow, a lock) is polled
    # after poll_interval_seconds, then twice as long at each wait of the same step, up to
    # poll_backoff_max_seconds. An operation the driver says is due is woken when it is due.
    poll_interval_seconds: float = 0.5
    poll_backoff_max_seconds: float = 10.0
    # An operation whose progress is shown (live-migration bytes, cold-migration disk, backup upload)
    # also wakes its step to record it: at most progress_updates times (at each 1/progress_updates
    # of the way), and at most every progress_interval_seconds.
    progress_updates: int = 5
    progress_interval_seconds: float = 2.0
    visibility_timeout_seconds: int = 3600


class WorkerOptions(BaseModel):
    """``compute-actions worker``'s Celery pool (workers/cli.py ``run_worker``; a ``--pool`` argument wins).

    ``prefork`` runs each delivery in a pool child: a child killed alone (the OOM killer) is
    requeued by its own worker at once, and ``task_time_limit`` kills a delivery stuck in a
    driver call while the worker goes on. ``solo`` runs it in the worker's own process, right
    after the message is read: no hand-off to a child, which waits for the next turn of the
    event loop (the flush of the buffered task events, one Redis round trip, comes first) and
    for the child to be woken, about 2.5 ms of each delivery's wall time at duration_scale 0.
    What ``solo`` gives up: one delivery at a time per process (``--concurrency`` is ignored;
    run more processes); no time limit (a delivery stuck in a call stalls the whole process:
    its lease expires and another worker takes the action over, but the countdown messages
    this one has reserved stay unacked until Redis's visibility timeout restores them); a
    killed delivery always takes its process, so its message is recovered by the reaper or
    the visibility timeout, never requeued by the same worker.
    """

    pool: Literal["prefork", "solo"] = "prefork"


class FleetOptions(BaseModel):
    fleet_file: str = str(CONFIG_DIR / "fleet.yaml")
    # Multiplies every simulated operation duration (tests use small values).
    duration_scale: float = 1.0


class QuotaOptions(BaseModel):
    """Nova's [quota] defaults (nova/conf/quota.py); -1 is unlimited. ``max_backup_rotation`` is ours."""

    instances: int = 10
    cores: int = 20
    ram: int = 51200
    metadata_items: int = 128
    injected_files: int = 5
    injected_file_content_bytes: int = 10240
    injected_file_path_length: int = 255
    key_pairs: int = 100
    server_groups: int = 10
    server_group_members: int = 10
    # Nova has no cap on createBackup's rotation; a larger one is a 400.
    max_backup_rotation: int = 32


class IdempotencyOptions(BaseModel):
    """The ``Idempotency-Key`` header of POST /servers and POST /servers/{id}/action."""

    # How long a finished answer is kept and replayed to a retry with the same key.
    window_seconds: int = 86400
    # A reservation whose request never finished (its process died) expires after this long;
    # keep it above the gunicorn timeout (rpc_response_timeout + 30).
    in_flight_ttl_seconds: float = 120.0
    # How long a duplicate waits for the first request's answer before a 409.
    wait_seconds: float = 10.0


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
    # Nova's [DEFAULT] zone options: the zone of a compute host in no zoned aggregate, the zone of
    # non-compute services, and the zone a server is pinned to when its create names none.
    default_availability_zone: str = "nova"
    internal_service_availability_zone: str = "internal"
    default_schedule_zone: str | None = None
    # Nova's [DEFAULT] service_down_time: a nova-compute whose last report is older is down
    # (os-services, os-hypervisors, the scheduler). Its reports are the workers' heartbeats, every
    # [health] heartbeat_interval_seconds (Nova's report_interval, 10 s).
    service_down_time: float = 60.0
    redis: RedisOptions = RedisOptions()
    api: ApiOptions = ApiOptions()
    oslo_policy: OsloPolicyOptions = OsloPolicyOptions()
    conductor: ConductorOptions = ConductorOptions()
    scheduler: SchedulerOptions = SchedulerOptions()
    libvirt: LibvirtOptions = LibvirtOptions()
    engine: EngineOptions = EngineOptions()
    worker: WorkerOptions = WorkerOptions()
    fleet: FleetOptions = FleetOptions()
    quota: QuotaOptions = QuotaOptions()
    idempotency: IdempotencyOptions = IdempotencyOptions()
    metrics: MetricsOptions = MetricsOptions()
    logging: LoggingOptions = LoggingOptions()
    health: HealthOptions = HealthOptions()

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
