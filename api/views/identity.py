"""A minimal identity v3 (Keystone) for dev: version documents, tokens, project and user lookups.

``openstack`` insists on an identity v3 endpoint even with the admin_token plugin; pointing
``identity_endpoint_override`` at ``/identity/v3`` satisfies it (shared/spec/clients.md §1),
and OSC resolves ``--project``/``--user`` names through it (``GET /projects/{name_or_id}``,
then ``?name=``). Clients that authenticate for real (novaclient's ``nova`` CLI, the SDK with
``auth_type: token`` or ``password``) get a token with a service catalog here.

- ``GET /identity`` (300) and ``/identity/v3``: version discovery.
- ``POST /identity/v3/auth/tokens`` (noauth2 only): the ``token`` method (a dev token
  ``user:project``) or the ``password`` method (any password: noauth2 checks none), scoped to
  a project by id or name (default: the token's project, or the user's own). The new token,
  in ``X-Subject-Token``, is ``user:project``; the body is Keystone's, with the catalog:
  ``compute`` (``/v2.1``), ``image`` (``/image``), ``identity`` (``/identity``) and
  ``block-storage`` (``/volume/v3``).
- ``GET``/``HEAD /identity/v3/auth/tokens`` (``X-Subject-Token``), ``/auth/projects``,
  ``/auth/catalog``.
- ``GET /identity/v3/projects[?name=]``, ``/projects/{id}``, ``/users[?name=]``,
  ``/users/{id}``, ``/domains[/{id}]``: what compute/directory.py reads from the store (ids
  are names, all in the ``default`` domain), under Keystone's policy names
  (``identity:list_projects``, ...) with its legacy defaults.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api import auth, bodies, current
from api.blueprint_auth import authenticate_all_but
from api.errors import ApiError
from api.links import root_url
from compute.directory import DEFAULT_DOMAIN, Directory, read_directory

bp = Blueprint("identity", __name__)

REGION = "RegionOne"
TOKEN_LIFETIME = dt.timedelta(hours=24)
PUBLIC_ENDPOINTS = frozenset({"identity.show_identity_versions", "identity.show_identity_v3",
                              "identity.issue_token"})
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 415: "Unsupported Media Type"}
DOMAIN = {"id": DEFAULT_DOMAIN, "name": "Default"}


authenticate_all_but(bp, PUBLIC_ENDPOINTS)


@bp.errorhandler(ApiError)
def _keystone_error(exc: ApiError) -> Response:
    response = jsonify({"error": {"code": exc.code, "message": exc.message, "title": TITLES.get(exc.code, "Error")}})
    response.status_code = exc.code
    return response


def _v3_url(*parts: str) -> str:
    return "/".join([f"{root_url()}/identity/v3", *parts])


def _version() -> dict[str, Any]:
    return {"id": "v3.14", "status": "stable", "links": [{"rel": "self", "href": f"{root_url()}/identity/v3/"}]}


@bp.get("/identity")
@bp.get("/identity/")
def show_identity_versions() -> Response:
    response = jsonify({"versions": {"values": [_version()]}})
    response.status_code = 300
    return response


@bp.get("/identity/v3")
@bp.get("/identity/v3/")
def show_identity_v3() -> Any:
    return jsonify({"version": _version()})


# ---- tokens ---------------------------------------------------------------------------------------
def _unauthorized(message: str = auth.AUTH_REQUIRED_MESSAGE) -> ApiError:
    return ApiError(401, message)


def _split(token: str) -> tuple[str, str]:
    """The noauth2 reading of ``user:project`` (api/auth.py)."""
    user_id, _, project_id = token.strip().partition(":")
    return user_id or project_id, project_id or user_id


def _valid_name(value: Any) -> bool:
    """A user or project a dev token can carry: printable ASCII without ':' (it goes in a header)."""
    return isinstance(value, str) and re.fullmatch(r"[!-9;-~]{1,255}", value) is not None


def _name_of(entity: Any) -> str | None:
    if not isinstance(entity, dict):
        return None
    value = entity.get("id") or entity.get("name")
    return value if _valid_name(value) else None


def _catalog() -> list[dict[str, Any]]:
    root = root_url()
    services = [("compute", "nova", f"{root}/v2.1"), ("image", "glance", f"{root}/image"),
                ("identity", "keystone", f"{root}/identity"), ("block-storage", "cinder", f"{root}/volume/v3")]
    return [{
        "id": kind,
        "type": kind,
        "name": name,
        "endpoints": [{"id": f"{kind}-{interface}", "interface": interface, "region": REGION,
                       "region_id": REGION, "url": url} for interface in ("public", "internal", "admin")],
    } for kind, name, url in services]


def _roles(user_id: str) -> list[dict[str, str]]:
    names = auth.ADMIN_ROLES if user_id == auth.ADMIN_USER else auth.MEMBER_ROLES
    return [{"id": name, "name": name} for name in names]


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_body(token: str, methods: list[str]) -> dict[str, Any]:
    user_id, project_id = _split(token)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return {"token": {
        "methods": methods,
        "user": {"id": user_id, "name": user_id, "domain": dict(DOMAIN), "password_expires_at": None},
        "audit_ids": [uuid.uuid5(uuid.NAMESPACE_URL, token).hex[:22]],
        "issued_at": _stamp(now),
        "expires_at": _stamp(now + TOKEN_LIFETIME),
        "project": {"id": project_id, "name": project_id, "domain": dict(DOMAIN)},
        "is_domain": False,
        "roles": _roles(user_id),
        "catalog": _catalog(),
    }}


def _authenticated_user(identity: Any) -> tuple[str, str | None]:
    """(user, the project of the presented token) from the ``identity`` of an auth request."""
    methods = identity.get("methods") if isinstance(identity, dict) else None
    if not isinstance(methods, list) or not methods:
        raise ApiError(400, "Expecting to find identity methods in auth.")
    if "token" in methods:
        presented = identity.get("token")
        raw = presented.get("id") if isinstance(presented, dict) else None
        user_id, project_id = _split(raw) if isinstance(raw, str) else ("", "")
        if not (_valid_name(user_id) and _valid_name(project_id)):
            raise _unauthorized()
        return user_id, project_id
    if "password" in methods:
        password = identity.get("password")
        user_id = _name_of(password.get("user") if isinstance(password, dict) else None)
        if user_id is None:
            raise _unauthorized()
        return user_id, None
    raise _unauthorized(f"Unsupported authentication method: {str(methods[0])[:100]}")


def _scoped_project(scope: Any, user_id: str, token_project: str | None) -> str:
    if scope is None or scope == "unscoped":
        return token_project or user_id
    if not isinstance(scope, dict) or "project" not in scope:
        raise _unauthorized("The dev identity issues project-scoped tokens only.")
    project_id = _name_of(scope["project"])
    if project_id is None:
        raise ApiError(400, "Expecting to find id or name in project.")
    return project_id


@bp.post("/identity/v3/auth/tokens")
def issue_token() -> Response:
    if current.settings().api.auth_strategy != "noauth2":
        raise ApiError(404, "Tokens come from Keystone ([api] auth_strategy = keystone).")
    body = bodies.json_body()
    request_auth = body.get("auth") if isinstance(body, dict) else None
    if not isinstance(request_auth, dict):
        raise ApiError(400, "Expecting to find auth in request body.")
    user_id, token_project = _authenticated_user(request_auth.get("identity"))
    project_id = _scoped_project(request_auth.get("scope"), user_id, token_project)
    token = f"{user_id}:{project_id}"
    methods = [m for m in request_auth["identity"]["methods"] if m in ("token", "password")]
    response = jsonify(token_body(token, methods))
    response.status_code = 201
    response.headers["X-Subject-Token"] = token
    return response


@bp.route("/identity/v3/auth/tokens", methods=["GET", "HEAD"])
def validate_token() -> Response:
    subject = (request.headers.get("X-Subject-Token") or "").strip()
    if not all(_valid_name(part) for part in _split(subject)):
        raise ApiError(404, f"Could not find token: {subject[:100]}.")
    response = jsonify(token_body(subject, ["token"]))
    response.headers["X-Subject-Token"] = subject
    return response


@bp.get("/identity/v3/auth/catalog")
def show_catalog() -> Any:
    return jsonify({"catalog": _catalog(), "links": {"self": _v3_url("auth", "catalog"),
                                                     "previous": None, "next": None}})


# ---- projects, users, domains ------------------------------------------------------------------------
def _directory() -> Directory:
    ctx = current.context()
    return read_directory(current.service().store, (ctx.user_id, ctx.project_id))


def _project(project_id: str) -> dict[str, Any]:
    return {"id": project_id, "name": project_id, "domain_id": DEFAULT_DOMAIN, "description": "",
            "enabled": True, "is_domain": False, "parent_id": DEFAULT_DOMAIN, "tags": [], "options": {},
            "links": {"self": _v3_url("projects", project_id)}}


def _user(user_id: str) -> dict[str, Any]:
    return {"id": user_id, "name": user_id, "domain_id": DEFAULT_DOMAIN, "enabled": True,
            "password_expires_at": None, "options": {}, "links": {"self": _v3_url("users", user_id)}}


def _domain() -> dict[str, Any]:
    return {**DOMAIN, "description": "The default domain", "enabled": True, "tags": [], "options": {},
            "links": {"self": _v3_url("domains", DEFAULT_DOMAIN)}}


def _authorize(rule: str, target: dict[str, Any]) -> None:
    if not current.allowed(rule, target):
        raise ApiError(403, f"You are not authorized to perform the requested action: {rule}.")


def _filtered(names: set[str]) -> list[str]:
    """Keystone's list filters that mean something here: ``name``, ``domain_id``, ``enabled``."""
    args = request.args
    if args.get("domain_id", DEFAULT_DOMAIN) != DEFAULT_DOMAIN:
        return []
    if args.get("enabled", "true").strip().lower() in ("false", "0", "no", "off"):
        return []
    if "name" in args:
        names = {n for n in names if n == args["name"]}
    return sorted(names)


def _listing(collection: str, items: list[dict[str, Any]]) -> Any:
    return jsonify({collection: items, "links": {"self": request.base_url, "previous": None, "next": None}})


@bp.get("/identity/v3/projects")
def list_projects() -> Any:
    _authorize("identity:list_projects", {})
    return _listing("projects", [_project(p) for p in _filtered(_directory().projects)])


@bp.get("/identity/v3/projects/<project_id>")
def show_project(project_id: str) -> Any:
    if project_id not in _directory().projects:
        raise ApiError(404, f"Could not find project: {project_id[:100]}.")
    _authorize("identity:get_project", {"target.project.id": project_id})
    return jsonify({"project": _project(project_id)})


@bp.get("/identity/v3/auth/projects")
def list_my_projects() -> Any:
    ctx = current.context()
    mine = _directory().projects_of(ctx.user_id or "") | ({ctx.project_id} if ctx.project_id else set())
    return _listing("projects", [_project(p) for p in sorted(mine)])


@bp.get("/identity/v3/users")
def list_users() -> Any:
    _authorize("identity:list_users", {})
    return _listing("users", [_user(u) for u in _filtered(_directory().users)])


@bp.get("/identity/v3/users/<user_id>")
def show_user(user_id: str) -> Any:
    if user_id not in _directory().users:
        raise ApiError(404, f"Could not find user: {user_id[:100]}.")
    _authorize("identity:get_user", {"target.user.id": user_id})
    return jsonify({"user": _user(user_id)})


@bp.get("/identity/v3/domains")
def list_domains() -> Any:
    args = request.args
    wanted = args.get("name", "Default") == "Default" and args.get("enabled", "true").lower() != "false"
    return _listing("domains", [_domain()] if wanted else [])


@bp.get("/identity/v3/domains/<domain_id>")
def show_domain(domain_id: str) -> Any:
    if domain_id != DEFAULT_DOMAIN:
        raise ApiError(404, f"Could not find domain: {domain_id[:100]}.")
    return jsonify({"domain": _domain()})
