"""Who is calling: a RequestContext from the request headers, per ``[api] auth_strategy``.

``noauth2`` (Nova's development strategy, the only one a bare endpoint with
keystoneauth's ``admin_token`` plugin can use): ``X-Auth-Token: user:project``; the user
``admin`` is an admin. ``keystone``: keystonemiddleware validates the token and we read
the headers it sets. It runs with ``delay_auth_decision`` so that the version documents
stay public and a 401 is answered here, as a Nova fault body.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.datastructures import Headers

from api.errors import ApiError
from compute.context import RequestContext
from compute.settings import Settings

AUTH_REQUIRED_MESSAGE = "The request you have made requires authentication."
ADMIN_USER = "admin"
ADMIN_ROLES = ["admin", "member", "reader"]
MEMBER_ROLES = ["member", "reader"]


def unauthorized() -> ApiError:
    return ApiError(401, AUTH_REQUIRED_MESSAGE)


def noauth2_context(headers: Headers, request_id: str) -> RequestContext:
    token = (headers.get("X-Auth-Token") or "").strip()
    if not token:
        raise unauthorized()
    user_id, _, project_id = token.partition(":")
    user_id = user_id or project_id
    project_id = project_id or user_id
    roles = ADMIN_ROLES if user_id == ADMIN_USER else MEMBER_ROLES
    return RequestContext(user_id=user_id, project_id=project_id, roles=list(roles), request_id=request_id)


def keystone_context(headers: Headers, request_id: str) -> RequestContext:
    if headers.get("X-Identity-Status") != "Confirmed":
        raise unauthorized()
    roles = [r.strip().lower() for r in (headers.get("X-Roles") or "").split(",") if r.strip()]
    return RequestContext(
        user_id=headers.get("X-User-Id"),
        project_id=headers.get("X-Project-Id") or headers.get("X-Tenant-Id"),
        roles=roles,
        request_id=request_id,
    )


def context_builder(settings: Settings) -> Callable[[Headers, str], RequestContext]:
    if settings.api.auth_strategy == "keystone":
        return keystone_context
    return noauth2_context


def keystone_conf(settings: Settings) -> dict[str, Any]:
    """``[api] keystone_authtoken`` options for keystonemiddleware, with the decision delayed."""
    conf = dict(getattr(settings.api, "keystone_authtoken", None) or {})
    conf["delay_auth_decision"] = True
    return conf


def wrap_with_keystone(wsgi_app: Any, settings: Settings) -> Any:
    from keystonemiddleware import auth_token

    return auth_token.AuthProtocol(wsgi_app, keystone_conf(settings))
