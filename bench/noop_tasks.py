"""The floor of bench/fast_actions.py: a Celery no-op task with the project's reliable settings.

The app is ``workers.celery_app.make_celery`` on the same settings as `compute-actions worker`
(late acks, reject on worker lost, prefetch 1, task events), so the only difference from a
delivered action is the engine's work. The task's one Redis round trip records when it ran
(in the sorted set ``done``), which is how the bench knows the backlog is done.

    python -m celery -A noop_tasks worker -Q <queue> -c 1   # cwd bench/, env as for the worker
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import NOOP

from compute.settings import get_settings
from workers.celery_app import make_celery

settings = get_settings()
app = make_celery(settings)
marks = redis.Redis.from_url(settings.redis.store_url, decode_responses=True)


@app.task(name=NOOP, acks_late=True, reject_on_worker_lost=True)
def noop(index: int, done: str) -> None:
    marks.zadd(done, {str(index): time.time()})
