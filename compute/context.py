"""Who is asking, and under which request id: what Nova keeps in its RequestContext."""
from __future__ import annotations

from dataclasses import dataclass, field

from compute.models import new_request_id


@dataclass
class RequestContext:
    user_id: str | None
    project_id: str | None
    roles: list[str] = field(default_factory=list)
    request_id: str = field(default_factory=new_request_id)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def policy_creds(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": list(self.roles),
            "is_admin": self.is_admin,
        }
