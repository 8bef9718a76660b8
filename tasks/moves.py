"""What the flows that move a server share: its migration record, the hosts of a move, its claims.

Used by the live and cold migrations and by the actions that finish, cancel, abort or
force one (confirmResize, revertResize, cold_migration_cancel, live_migration_*).
"""
from __future__ import annotations

from collections.abc import Callable

from compute import errors
from compute.guards import being_deleted
from compute.migrations import MigrationChange
from compute.models import Host, Instance, Migration
from tasks.destination_search import DestinationSearch, DestinationSearchValues
from tasks.step import INSTANCE, FlowContext, FlowValues, InConductor, StepFailed

MIGRATION = "migration"  # this action's migration, in the FlowContext's records


class MoveValues(FlowValues):
    """Saved by a flow that moves the server: its migration's id, once its uuid was looked up."""

    migration_id: int | None = None


def migration_of(fc: FlowContext) -> Migration:
    """This action's migration: by the uuid its flow was given, or by id (abort, force-complete).

    Read once per delivery, then as this flow's own writes left it (``FlowContext.cached``); a
    flow whose values are ``MoveValues`` keeps the id, so later deliveries read it by id.
    """
    if "migration_uuid" in fc.params:
        named = fc.params["migration_uuid"]
        values = fc.values if isinstance(fc.values, MoveValues) else None
        if values is not None and values.migration_id is not None:
            known_id = values.migration_id
            found = fc.cached(MIGRATION, "", lambda: fc.store.get_migration(known_id))
        else:
            found = fc.cached(MIGRATION, "", lambda: fc.store.get_migration_by_uuid(named) if named else None)
            if found is not None and values is not None:
                values.migration_id = found.id
    else:
        named = fc.params["migration_id"]
        found = fc.cached(MIGRATION, "", lambda: fc.store.get_migration(named))
    if found is None:
        raise StepFailed(f"Migration {named} could not be found.")
    return found


def update_migration(fc: FlowContext, mutate: Callable[[Migration], None]) -> Migration:
    """A compare-and-set on this action's migration (``Store.update_migration``), remembered as written."""
    known = migration_of(fc)
    migration = fc.store.update_migration(known.id, mutate, known=known)
    fc.remember(MIGRATION, "", migration)
    return migration


def change_server_and_migration(fc: FlowContext, change: Callable[[Instance, Migration], None]) -> Migration:
    """The server and this flow's migration changed in one MULTI (see compute/migrations.py).

    The migration is read (by id) inside the server's compare-and-set, whose WATCH guards both
    records; what was written is this delivery's view of both from now on.
    """
    migration_id = migration_of(fc).id

    def read_and_change(inst: Instance) -> Migration:
        migration = fc.store.get_migration(migration_id)
        if migration is None:
            raise errors.NotFound(f"Migration {migration_id} could not be found.")
        change(inst, migration)
        return migration

    staged = MigrationChange(fc.store, read_and_change)
    inst = fc.store.update_instance(fc.run.instance_uuid, staged.mutate, also=staged.write)
    assert staged.migration is not None
    fc.remember(INSTANCE, inst.id, inst)
    fc.remember(MIGRATION, "", staged.migration)
    return staged.migration


def refuse_if_being_deleted(fc: FlowContext) -> Instance:
    """A server being deleted takes its claims with it; the move stops rather than claim for it."""
    inst = fc.instance()
    if being_deleted(inst):
        raise StepFailed(f"Instance {inst.id} is being deleted")
    return inst


def host_record(fc: FlowContext, name: str | None) -> Host:
    host = fc.host(name) if name else None
    if host is None:
        raise StepFailed(f"Compute host {name} could not be found.")
    return host


def move_task(inst: Instance, expected: tuple[str | None, ...], new: str | None) -> None:
    """Move task_state only from what this flow put there; a rerun finds it already moved."""
    if inst.task_state == new:
        return
    if inst.task_state not in expected:
        raise StepFailed(f"Instance {inst.id} is now in task_state {inst.task_state}; the move stops")
    inst.task_state = new


def op_succeeded(fc: FlowContext, operation: str) -> bool:
    status = fc.driver.poll(fc.op_id(operation))
    return status.done and status.error is None


class OnSource:
    """Mixin: the step is the source compute's work (its event's host, its driver call's host)."""

    def runs_on(self, fc: FlowContext) -> str | None:
        return migration_of(fc).source_compute


class OnDestination:
    """Mixin: the step is the destination compute's work."""

    def runs_on(self, fc: FlowContext) -> str | None:
        return migration_of(fc).dest_compute


class ClaimingSearch(InConductor, DestinationSearch):
    """The conductor's destination search where a candidate holds a claim while it is tried.

    Claims follow the server: the run knows of every claim but the one a worker made just
    before dying, which the next start of the step gives back.
    """

    def before_search(self, fc: FlowContext) -> None:
        inst = fc.instance()
        keep = {inst.host, DestinationSearchValues.of(fc).candidate}
        for host in fc.store.hosts_claimed_by(inst.id) - keep:
            fc.store.release_claim(host, inst.id)

    def release(self, fc: FlowContext, host: str) -> None:
        fc.store.release_claim(host, fc.run.instance_uuid)

    def revert(self, fc: FlowContext) -> None:
        """Whatever the server holds away from its current host is given back (all of it if it is going)."""
        inst = fc.instance()
        keep = set() if being_deleted(inst) else {inst.host}
        for host in fc.store.hosts_claimed_by(inst.id) - keep:
            fc.store.release_claim(host, inst.id)
