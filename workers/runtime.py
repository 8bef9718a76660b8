"""The composition root: builds the store, fleet, service, engine and Celery app from Settings."""
from __future__ import annotations

from dataclasses import dataclass

import redis
from celery import Celery

from compute.service import ComputeService
from compute.settings import Settings
from compute.store import Store
from fleet.loader import seed_fleet
from fleet.simulator import SimulatedFleet
from tasks.flow import FlowRunner
from tasks.registry import all_flows
from workers.celery_app import CeleryEnqueuer, make_celery, register_action_tasks
from workers.reaper import Reaper


@dataclass
class Runtime:
    settings: Settings
    store: Store
    fleet: SimulatedFleet
    celery: Celery
    enqueuer: CeleryEnqueuer
    service: ComputeService
    runner: FlowRunner
    reaper: Reaper


def failure_reason(store: Store, request_id: str) -> str | None:
    """What an action that ended in error recorded as its reason (its flow run's ``error``)."""
    run = store.get_run(request_id)
    return run.error if run is not None else None


def build_runtime(
    settings: Settings,
    *,
    redis_client: redis.Redis | None = None,
    broker_url: str | None = None,
    seed: bool = True,
) -> Runtime:
    client = redis_client or redis.Redis.from_url(settings.redis.store_url, decode_responses=True,
                                                  **settings.redis.client_options())
    store = Store(client, prefix=settings.redis.key_prefix,
                  default_availability_zone=settings.default_availability_zone,
                  service_down_time=settings.service_down_time)
    fleet = SimulatedFleet(store, duration_scale=settings.fleet.duration_scale)
    if seed:
        seed_fleet(store, fleet, settings.fleet.fleet_file)
    app = make_celery(settings, broker_url=broker_url)
    enqueuer = CeleryEnqueuer(app, settings.engine.queue)
    runner = FlowRunner(store, fleet, settings, enqueuer, all_flows())
    register_action_tasks(app, runner.run, lambda request_id: failure_reason(store, request_id), runner.flows)
    return Runtime(
        settings=settings, store=store, fleet=fleet, celery=app, enqueuer=enqueuer,
        service=ComputeService(store, enqueuer, settings), runner=runner,
        reaper=Reaper(store, enqueuer, settings),
    )
