"""Confirms resized servers left in VERIFY_RESIZE longer than ``resize_confirm_window``
(nova/compute/manager.py ``_poll_unconfirmed_resizes``).

Safe with any number of processes sweeping at once: each confirm is claimed by the
compare-and-set that also records its action (the migration goes finished -> confirming
in the server's MULTI, compute/migrations.py), so a server is confirmed once and a
process that loses the race records nothing. Side effects come only after that claim.
Per migration, as in Nova: a server that is gone or in ERROR, or no longer resized with
no task, has its migration set to error; one being deleted or finishing is skipped; the
rest are confirmed with an admin context that has no user or project, so the
``confirmResize`` action shows null user_id and project_id.
"""
from __future__ import annotations

import logging
import threading
import time

from compute import errors
from compute.actions.confirm_resize import confirm_resize
from compute.context import RequestContext
from compute.migrations import RESIZE_FAMILY, update_server_and_migration
from compute.models import Instance, Migration
from compute.service import ComputeService
from compute.states import MigrationStatus, TaskState, VmState
from compute.store import iso_to_epoch

LOG = logging.getLogger(__name__)

SKIP_TASK_STATES = (TaskState.DELETING, TaskState.RESIZE_FINISH)


def periodic_context() -> RequestContext:
    return RequestContext(user_id=None, project_id=None, roles=["admin"])


class AutoConfirmer:
    def __init__(self, service: ComputeService) -> None:
        self.service = service
        self.store = service.store
        self.window = service.settings.resize_confirm_window

    def due(self, now: float) -> list[Migration]:
        return [m for m in self.store.list_migrations()
                if m.status == MigrationStatus.FINISHED and m.migration_type in RESIZE_FAMILY
                and iso_to_epoch(m.updated_at) <= now - self.window]

    def sweep(self, now: float | None = None) -> list[str]:
        """One pass; returns the request ids of the confirms this process started."""
        if self.window <= 0:
            return []
        now = time.time() if now is None else now
        started = []
        for migration in self.due(now):
            inst = self.store.get_instance(migration.instance_uuid)
            if inst is None or inst.deleted or inst.vm_state == VmState.ERROR:
                self._give_up(migration, inst)
            elif inst.task_state in SKIP_TASK_STATES:
                continue
            elif inst.vm_state != VmState.RESIZED or inst.task_state is not None:
                self._give_up(migration, inst)
            else:
                ctx = periodic_context()
                try:
                    confirm_resize(self.service, ctx, inst)
                except errors.ComputeError as exc:  # lost the race, source down, broker down: next period
                    LOG.info("auto-confirm of %s skipped: %s", inst.id, exc.message)
                    continue
                LOG.info("auto-confirming %s (migration %s) as %s", inst.id, migration.id, ctx.request_id)
                started.append(ctx.request_id)
        return started

    def _give_up(self, migration: Migration, inst: Instance | None) -> None:
        """Nova sets such a migration to error; done by compare-and-set, so once."""
        def close(m: Migration) -> None:
            if m.status != MigrationStatus.FINISHED:
                raise errors.Conflict(f"Migration {m.id} is {m.status} now")
            m.status = MigrationStatus.ERROR

        try:
            if inst is None:
                self.store.update_migration(migration.id, close)
            else:
                update_server_and_migration(self.store, inst.id, migration.uuid, lambda _i, m: close(m))
        except errors.ComputeError as exc:
            LOG.info("auto-confirm left migration %s alone: %s", migration.id, exc.message)
            return
        LOG.warning("migration %s set to error: its server is not waiting for a confirm", migration.id)


class AutoConfirmThread(threading.Thread):
    """Runs :meth:`AutoConfirmer.sweep` every ``periodic_interval_seconds``; idle when the window is 0."""

    def __init__(self, service: ComputeService) -> None:
        super().__init__(name="compute-actions-auto-confirm", daemon=True)
        self.confirmer = AutoConfirmer(service)
        self.interval = service.settings.periodic_interval_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        if self.confirmer.window <= 0:
            return
        while not self.stopped.wait(self.interval):
            try:
                self.confirmer.sweep()
            except Exception:  # a Redis blip must not end the periodic task
                LOG.exception("auto-confirm sweep failed")

    def stop(self) -> None:
        self.stopped.set()
