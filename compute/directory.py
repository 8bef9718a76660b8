"""The projects and users a deployment knows of, for the dev identity API (api/views/identity.py).

With noauth2 there is no Keystone: a token ``user:project`` names both. What exists is what
the records name: the servers', their instance actions' and the migrations' project_id and
user_id, the images' owners (and the ``user_id`` a backup carries), plus ``admin`` and
``demo`` (the tokens ``compute-actions dev`` prints). Ids are the names, in the ``default``
domain. Read on demand from the store (one set it keeps as records are written), so every API
process answers the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compute.store import Store

DEFAULT_DOMAIN = "default"
BUILT_IN = {"admin": {"admin"}, "demo": {"demo"}}  # user -> projects


@dataclass
class Directory:
    projects: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    # user -> the projects the records show it working in
    memberships: dict[str, set[str]] = field(default_factory=dict)

    def add(self, user_id: str | None, project_id: str | None) -> None:
        if project_id:
            self.projects.add(project_id)
        if user_id:
            self.users.add(user_id)
            if project_id:
                self.memberships.setdefault(user_id, set()).add(project_id)

    def projects_of(self, user_id: str) -> set[str]:
        """``admin`` has a role everywhere (noauth2 makes it an admin of any project it names)."""
        if user_id == "admin":
            return set(self.projects)
        return set(self.memberships.get(user_id, set()))


def read_directory(store: Store, also: tuple[str | None, str | None] = (None, None)) -> Directory:
    """Everything the store names, the built-in users, and ``also`` (the caller's user and project).

    The store keeps what its records name as they are written (``identities``): one read of those
    names, not of the records."""
    found = Directory()
    for user_id, projects in BUILT_IN.items():
        for project_id in projects:
            found.add(user_id, project_id)
    found.add(*also)
    for user_id, project_id in store.identities():
        found.add(user_id, project_id)
    return found
