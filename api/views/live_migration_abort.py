"""DELETE /servers/{id}/migrations/{id} (2.24+): abort a live migration (``live_migration_cancel``;
queued and preparing too from 2.65), or cancel a cold migration that has not reached its copy
(``cold_migration_cancel``, compute/actions/cold_migration_cancel.py; Nova cannot do this).
"""
from __future__ import annotations

from flask import Blueprint, Response

from api import current, microversions
from api.actions import accepted
from api.lookup import authorized_server
from api.views.server_migrations import RULE
from compute.actions import cold_migration_cancel, live_migration_abort
from compute.migrations import server_migration
from compute.states import MigrationType

bp = Blueprint("live_migration_abort", __name__, url_prefix="/v2.1")


@bp.delete("/servers/<server_id>/migrations/<migration_id>")
def abort_server_migration(server_id: str, migration_id: str) -> Response:
    microversions.require((2, 24))
    instance = authorized_server(server_id, RULE.format("delete"))
    migration = server_migration(current.service().store, instance, migration_id)
    if migration is not None and migration.migration_type == MigrationType.COLD:
        cold_migration_cancel.cancel_migration(current.service(), current.context(), instance, migration_id)
        return accepted()
    abortable = (live_migration_abort.ABORTABLE_FROM_2_65 if microversions.current() >= (2, 65)
                 else live_migration_abort.ABORTABLE)
    live_migration_abort.abort(current.service(), current.context(), instance, migration_id, abortable=abortable)
    return accepted()
