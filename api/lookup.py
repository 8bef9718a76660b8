"""Finding the server a request is about, and checking policy against it.

Lookup comes before policy (Nova since Pike): a server of another project is a 404 for a
non-admin, because the service's lookup is project-scoped. An id that is not a UUID
cannot name a server, so it is a 404 without touching the store.
"""
from __future__ import annotations

from api import current
from api.policy import server_target
from api.schemas import is_uuid_like
from compute.errors import InstanceNotFound
from compute.models import Instance


def find_server(server_id: str, *, allow_deleted: bool = False) -> Instance:
    if not is_uuid_like(server_id):
        raise InstanceNotFound(server_id)
    return current.service().get_instance(current.context(), server_id.lower(), allow_deleted=allow_deleted)


def authorized_server(server_id: str, rule: str) -> Instance:
    """The server the request names, once the caller may apply ``rule`` to it (404, then 403)."""
    instance = find_server(server_id)
    authorize_for_server(rule, instance)
    return instance


def authorize_for_server(rule: str, instance: Instance) -> None:
    current.authorize(rule, server_target(instance.project_id, instance.user_id))


def allowed_for_server(rule: str, instance: Instance) -> bool:
    return current.allowed(rule, server_target(instance.project_id, instance.user_id))
