"""What a view sees of the request being served and of the app serving it.

create_app puts the service, settings and policy enforcer in ``app.extensions``;
the before-request hook puts the caller's RequestContext in ``flask.g``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, g

from api.errors import ApiError
from api.policy import PolicyEnforcer
from compute.context import RequestContext
from compute.service import ComputeService
from compute.settings import Settings

EXTENSION = "compute_actions"


@dataclass
class AppParts:
    settings: Settings
    service: ComputeService
    policy: PolicyEnforcer


def parts() -> AppParts:
    return current_app.extensions[EXTENSION]


def service() -> ComputeService:
    return parts().service


def settings() -> Settings:
    return parts().settings


def context() -> RequestContext:
    ctx = g.get("context")
    if ctx is None:
        raise ApiError(401, "The request you have made requires authentication.")
    return ctx


def authorize(rule: str, target: dict[str, Any]) -> None:
    parts().policy.authorize(context(), rule, target)


def allowed(rule: str, target: dict[str, Any]) -> bool:
    return parts().policy.allowed(context(), rule, target)
