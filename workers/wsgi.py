"""WSGI entry for any server: ``gunicorn 'workers.wsgi:application'``.

It lives beside the Celery wiring because the API needs the Celery enqueuer; the API
package itself never imports Celery.
"""
from __future__ import annotations

from flask import Flask

from compute.settings import Settings, get_settings
from workers.runtime import build_runtime


def build_application(settings: Settings | None = None) -> Flask:
    from api.app import create_app

    settings = settings or get_settings()
    runtime = build_runtime(settings)
    return create_app(settings, runtime.service)


def __getattr__(name: str) -> Flask:
    if name == "application":
        return build_application()
    raise AttributeError(name)
