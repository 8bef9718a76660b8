"""Migration bodies (nova views of server_migrations.py and migrations.py), per microversion.

One record type serves every kind of move (live, cold, resize); which keys show depends
only on the microversion, and the in-progress links only on the record being a live
migration in progress.
"""
from __future__ import annotations

import re
from typing import Any

from api import links
from api.microversions import APIVersion
from compute.models import Migration
from compute.states import IN_PROGRESS, MigrationType

PROGRESS_KEYS = ("disk_processed_bytes", "disk_remaining_bytes", "disk_total_bytes", "memory_processed_bytes",
                 "memory_remaining_bytes", "memory_total_bytes")
HOST_KEYS = ("dest_compute", "dest_host", "dest_node", "source_compute", "source_node")


def is_live_in_progress(migration: Migration) -> bool:
    return migration.migration_type == MigrationType.LIVE and migration.status in IN_PROGRESS


def flavor_id(value: str | None) -> int | str | None:
    """Nova shows its flavors' integer database ids; ours are those same strings where they are digits."""
    return int(value) if value is not None and re.fullmatch(r"[0-9]{1,19}", value) else value


def with_owner(view: dict[str, Any], migration: Migration, mv: APIVersion) -> dict[str, Any]:
    if mv >= (2, 59):
        view["uuid"] = migration.uuid
    if mv >= (2, 80):
        view["user_id"] = migration.user_id
        view["project_id"] = migration.project_id
    return view


def server_migration_view(migration: Migration, mv: APIVersion) -> dict[str, Any]:
    """An item of GET /servers/{id}/migrations[/{id}] (2.23+)."""
    view: dict[str, Any] = {"created_at": migration.created_at, "id": migration.id,
                            "server_uuid": migration.instance_uuid, "status": migration.status,
                            "updated_at": migration.updated_at}
    view.update({key: getattr(migration, key) for key in HOST_KEYS + PROGRESS_KEYS})
    return with_owner(dict(sorted(view.items())), migration, mv)


def migration_view(migration: Migration, mv: APIVersion) -> dict[str, Any]:
    """An item of GET /os-migrations."""
    view: dict[str, Any] = {
        "created_at": migration.created_at, "id": migration.id, "instance_uuid": migration.instance_uuid,
        "new_instance_type_id": flavor_id(migration.new_instance_type_id),
        "old_instance_type_id": flavor_id(migration.old_instance_type_id),
        "status": migration.status, "updated_at": migration.updated_at,
    }
    view.update({key: getattr(migration, key) for key in HOST_KEYS})
    view = dict(sorted(view.items()))
    if mv >= (2, 23):
        view["migration_type"] = migration.migration_type
        if is_live_in_progress(migration):
            view["links"] = links.self_and_bookmark(f"servers/{migration.instance_uuid}/migrations",
                                                    str(migration.id))
    return with_owner(view, migration, mv)
