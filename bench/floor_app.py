"""The floor of bench/api_accept.py: the least an accepted action can cost, served the way the API is.

``POST /floor/<id>/action`` parses the JSON body, does one HSET and one Celery ``apply_async``
(the project's Celery settings: same broker, transport options, late acks; a queue nobody
consumes) and answers 202. It runs under gunicorn with the settings of `compute-actions api`
(workers/cli.py ``run_api``: gthread, ``[api] threads`` per worker, keepalive 2), so the gap
between this and an action's accept rate is what the API's own code costs.

    python bench/floor_app.py --bind 127.0.0.1:8999 --workers 2   # env as for compute-actions api
"""
from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLOOR_TASK = "bench.floor_noop"


def create_app():
    import redis
    from flask import Flask, request

    from compute.settings import get_settings
    from workers.celery_app import make_celery

    settings = get_settings()
    store = redis.Redis.from_url(settings.redis.store_url, decode_responses=True)
    celery = make_celery(settings)
    prefix, queue = settings.redis.key_prefix, settings.engine.queue

    @celery.task(name=FLOOR_TASK, acks_late=True, reject_on_worker_lost=True)
    def floor_noop(server_id: str) -> None:
        return None

    app = Flask("bench_floor")

    @app.post("/floor/<server_id>/action")
    def action(server_id: str):
        body = request.get_json(force=True)
        store.hset(f"{prefix}floor:{server_id}", "task_state", str(next(iter(body), "")))
        floor_noop.apply_async(args=[server_id], queue=queue, task_id=f"{uuid.uuid4()}:0")
        return "", 202

    @app.get("/")
    def root():
        return {"floor": True}

    return app


def serve(bind: str, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    from compute.settings import get_settings

    settings = get_settings()

    class FloorServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:  # the same as workers/cli.py run_api
            self.cfg.set("bind", [bind])
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", settings.api.threads)
            self.cfg.set("keepalive", 2)
            self.cfg.set("timeout", int(settings.api.rpc_response_timeout) + 30)
            self.cfg.set("accesslog", None)

        def load(self):
            return create_app()

    FloorServer().run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="127.0.0.1:8999")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.setdefault("COMPUTE_ACTIONS_LOG_LEVEL", "WARNING")
    serve(args.bind, args.workers)


if __name__ == "__main__":
    main()
