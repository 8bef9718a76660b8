#!/usr/bin/env python3
"""Make Keystone hold what compute-actions needs, idempotently, with the standard library only.

Runs in any Python 3 (the Keystone image, the Tempest script, a laptop). It authenticates as
the admin that ``keystone-manage bootstrap`` made, from the usual variables: ``OS_AUTH_URL``
(``http://host:5000/v3``), ``OS_USERNAME``, ``OS_PASSWORD``, ``OS_PROJECT_NAME``,
``OS_USER_DOMAIN_NAME`` / ``OS_PROJECT_DOMAIN_NAME`` (``Default``), ``OS_REGION_NAME``
(``RegionOne``).

  provision.py wait [SECONDS]                      until Keystone issues a token
  provision.py endpoint TYPE NAME URL              a service and its public + internal endpoints
  provision.py user NAME PASSWORD PROJECT ROLE...  a project, a user in it, its roles on it

Everything that exists already is kept (a user's password and a changed endpoint URL are set
again), so each command may be run at every start.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

INTERFACES = ("public", "internal")


class Keystone:
    def __init__(self) -> None:
        self.url = os.environ["OS_AUTH_URL"].rstrip("/")
        if not self.url.endswith("/v3"):
            self.url += "/v3"
        self.region = os.environ.get("OS_REGION_NAME", "RegionOne")
        self.token: str | None = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              auth: bool = True) -> tuple[int, dict[str, Any], Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        if auth:
            request.add_header("X-Auth-Token", self.login())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            if error.code in (404, 409):
                return error.code, dict(error.headers), None
            raise SystemExit(f"{method} {self.url + path}: {error.code} {raw.decode(errors='replace')}") from None

    def login(self) -> str:
        if self.token is None:
            body = {"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": os.environ.get("OS_USERNAME", "admin"),
                    "password": os.environ["OS_PASSWORD"],
                    "domain": {"name": os.environ.get("OS_USER_DOMAIN_NAME", "Default")}}}},
                "scope": {"project": {
                    "name": os.environ.get("OS_PROJECT_NAME", "admin"),
                    "domain": {"name": os.environ.get("OS_PROJECT_DOMAIN_NAME", "Default")}}}}}
            _, headers, _ = self._call("POST", "/auth/tokens", body, auth=False)
            self.token = headers.get("X-Subject-Token") or headers.get("x-subject-token")
        assert self.token
        return self.token

    def find(self, collection: str, **query: str) -> dict[str, Any] | None:
        _, _, body = self._call("GET", f"/{collection}?{urllib.parse.urlencode(query)}")
        found = body[collection]
        return found[0] if found else None

    def ensure(self, collection: str, singular: str, query: dict[str, str],
               fields: dict[str, Any]) -> dict[str, Any]:
        found = self.find(collection, **query)
        if found is not None:
            return found
        _, _, body = self._call("POST", f"/{collection}", {singular: fields})
        return body[singular]

    # -- commands -----------------------------------------------------------------------------

    def endpoint(self, service_type: str, name: str, url: str) -> None:
        service = self.ensure("services", "service", {"type": service_type},
                              {"type": service_type, "name": name, "enabled": True})
        for interface in INTERFACES:
            found = self.find("endpoints", service_id=service["id"], interface=interface,
                              region_id=self.region)
            if found is None:
                self._call("POST", "/endpoints", {"endpoint": {
                    "service_id": service["id"], "interface": interface, "url": url,
                    "region_id": self.region, "enabled": True}})
            elif found["url"] != url:
                self._call("PATCH", f"/endpoints/{found['id']}", {"endpoint": {"url": url}})
        print(f"{service_type} ({name}): {url}")

    def user(self, name: str, password: str, project_name: str, roles: list[str]) -> None:
        project = self.ensure("projects", "project", {"name": project_name, "domain_id": "default"},
                              {"name": project_name, "domain_id": "default", "enabled": True})
        user = self.find("users", name=name, domain_id="default")
        if user is None:
            _, _, body = self._call("POST", "/users", {"user": {
                "name": name, "password": password, "domain_id": "default",
                "default_project_id": project["id"], "enabled": True}})
            user = body["user"]
        else:
            self._call("PATCH", f"/users/{user['id']}", {"user": {"password": password, "enabled": True}})
        for role_name in roles:
            role = self.ensure("roles", "role", {"name": role_name}, {"name": role_name})
            self._call("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role['id']}")
        print(f"user {name}: project {project_name} ({project['id']}), roles {', '.join(roles)}")

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.token = None
                self.login()
                return
            except (OSError, SystemExit) as error:
                if time.monotonic() > deadline:
                    raise SystemExit(f"Keystone at {self.url} did not answer in {seconds:.0f} s: {error}") from None
                time.sleep(0.3)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("wait", "endpoint", "user"):
        print(__doc__, file=sys.stderr)
        return 2
    keystone = Keystone()
    command, args = argv[0], argv[1:]
    if command == "wait":
        keystone.wait(float(args[0]) if args else 60.0)
    elif command == "endpoint" and len(args) == 3:
        keystone.endpoint(*args)
    elif command == "user" and len(args) >= 4:
        keystone.user(args[0], args[1], args[2], args[3:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
