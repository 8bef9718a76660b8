"""Cold migration and the resize family at the service level (nova/compute/api.py ``resize``,
``confirm_resize``, ``revert_resize``), plus a cancel that Nova does not have.

One rule keeps these safe with any number of API, worker and periodic processes: a cold
migration's record is only ever written in the same MULTI as its server's record
(:class:`MigrationChange`). The server's WATCH then serializes every change to the pair,
so of two confirms, a confirm and a revert, or a cancel and the copy step, exactly one
wins, and no crash can leave one record changed without the other.

Status strings follow Nova (nova-contract.md §6): pre-migrating -> migrating ->
post-migrating -> finished -> confirming -> confirmed, or reverting -> reverted; error
on failure. A cancel adds cancelling (the request, seen by the migrate flow) and
cancelled (set once the migration has been rolled back).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compute import errors
from compute.context import RequestContext
from compute.models import Instance, Migration
from compute.service import ComputeService, check_instance_lock, check_instance_state
from compute.states import TaskState, VmState
from compute.store import Store

# Instance action names (nova/compute/instance_actions.py; the cancel is ours).
MIGRATE = "migrate"
CONFIRM_RESIZE = "confirmResize"
REVERT_RESIZE = "revertResize"
CANCEL_COLD_MIGRATION = "cold_migration_cancel"

COLD_MIGRATION = "migration"
# confirmResize and revertResize finish both kinds of cold move.
RESIZE_FAMILY = ("migration", "resize")
MIGRATE_VM_STATES = (VmState.ACTIVE, VmState.STOPPED)

NOT_RESIZED = "Instance has not been resized."
SERVICE_UNAVAILABLE = "Service is unavailable at this time."


class MigrationStatus:
    PRE_MIGRATING = "pre-migrating"
    MIGRATING = "migrating"
    POST_MIGRATING = "post-migrating"
    FINISHED = "finished"
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    REVERTING = "reverting"
    REVERTED = "reverted"
    ERROR = "error"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


# ---- writing a server and its migration together ---------------------------------------------
def stage_migration(store: Store, pipe: Any, migration: Migration) -> None:
    """Queue a migration record into the caller's MULTI (a seam the race tests spy on)."""
    store.put_migration(migration, pipe)


class MigrationChange:
    """A compare-and-set on a server that also changes one of its migrations, in one MULTI.

    ``change(inst)`` checks and mutates the server (it may raise to abort) and returns
    the migration record, read fresh and changed, to write with it. ``mutate`` and
    ``write`` are what Store.update_instance and ComputeService.start_action take as the
    mutation and as ``also``.
    """

    def __init__(self, store: Store, change: Callable[[Instance], Migration]) -> None:
        self.store = store
        self.change = change
        self.migration: Migration | None = None

    def mutate(self, inst: Instance) -> None:
        self.migration = self.change(inst)

    def write(self, pipe: Any) -> None:
        assert self.migration is not None
        stage_migration(self.store, pipe, self.migration)


def update_server_and_migration(store: Store, instance_id: str, migration_uuid: str,
                                change: Callable[[Instance, Migration], None]) -> Migration:
    """Change a server and its migration together; ``change`` may raise to leave both as they were."""
    def read_and_change(inst: Instance) -> Migration:
        migration = get_migration(store, migration_uuid)
        change(inst, migration)
        return migration

    staged = MigrationChange(store, read_and_change)
    store.update_instance(instance_id, staged.mutate, also=staged.write)
    assert staged.migration is not None
    return staged.migration


def get_migration(store: Store, migration_uuid: str) -> Migration:
    migration = store.get_migration_by_uuid(migration_uuid)
    if migration is None:
        raise errors.NotFound(f"Migration {migration_uuid} could not be found.")
    return migration


def finished_migration(store: Store, instance_id: str) -> Migration | None:
    """The move waiting for confirmResize or revertResize (Nova: get_by_instance_and_status 'finished')."""
    return next((m for m in store.list_migrations(instance_id)
                 if m.status == MigrationStatus.FINISHED and m.migration_type in RESIZE_FAMILY), None)


# ---- synchronous checks ---------------------------------------------------------------------
def check_compute_up(store: Store, host_name: str | None) -> None:
    """Nova's ``check_instance_host(check_is_up=True)``: the compute service must be up (409)."""
    host = store.get_host(host_name) if host_name else None
    if host is None or not host.up or host.forced_down:
        raise errors.Conflict(SERVICE_UNAVAILABLE)


def check_requested_host(store: Store, inst: Instance, host: str) -> None:
    if host == inst.host:
        raise errors.Invalid("Cannot migrate to the host where the server exists.")
    if store.get_host(host) is None:
        raise errors.Invalid(f"Compute host {host} could not be found.")


def check_launched(inst: Instance, method: str) -> None:
    if not inst.launched_at:
        raise errors.InstanceInvalidState(method, inst.id, "launched_at", None)


# ---- the actions ------------------------------------------------------------------------------
def migrate(service: ComputeService, ctx: RequestContext, instance: Instance,
            host: str | None = None) -> Migration:
    """Accept a cold migration: task_state resize_prep and a pre-migrating record, then the flow.

    Scheduling is asynchronous (Nova since Ussuri): no valid host shows in the action.
    """
    store = service.store
    migration = Migration(instance_uuid=instance.id, migration_type=COLD_MIGRATION,
                          status=MigrationStatus.PRE_MIGRATING, user_id=ctx.user_id,
                          project_id=ctx.project_id, request_id=ctx.request_id)

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "migrate", vm_states=MIGRATE_VM_STATES)
        check_launched(inst, "migrate")
        if not inst.host:
            raise errors.InstanceNotReady(f"Instance {inst.id} is not ready")
        check_compute_up(store, inst.host)
        if host is not None:
            check_requested_host(store, inst, host)
        inst.task_state = TaskState.RESIZE_PREP
        inst.progress = 0
        migration.source_compute, migration.source_node = inst.host, inst.node
        migration.old_instance_type_id = migration.new_instance_type_id = inst.flavor.id

    def hide_unqueued_migration() -> None:
        def close(inst: Instance, m: Migration) -> None:
            m.status, m.hidden = MigrationStatus.ERROR, True

        update_server_and_migration(store, instance.id, migration.uuid, close)

    service.start_action(
        ctx, instance.id, MIGRATE, guard, flow="migrate",
        params={"migration_uuid": migration.uuid, "requested_host": host},
        also=lambda pipe: store.create_migration(migration, pipe),
        undo=hide_unqueued_migration,
    )
    return migration


def _finish_the_move(service: ComputeService, ctx: RequestContext, instance: Instance, *, action: str,
                     method: str, flow: str, new_status: str, new_task_state: str | None) -> Migration:
    """confirmResize or revertResize: the checks of nova-contract.md §4.3-4.4 in Nova's order, then
    the finished migration's new status and the server's task_state, with the action, in one MULTI."""
    store = service.store
    candidate = finished_migration(store, instance.id)

    def change(inst: Instance) -> Migration:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, method, vm_states=[VmState.RESIZED])
        check_launched(inst, method)
        migration = store.get_migration(candidate.id) if candidate is not None else None
        if migration is None or migration.status != MigrationStatus.FINISHED:
            raise errors.Invalid(NOT_RESIZED)
        check_compute_up(store, migration.source_compute)
        migration.status = new_status
        inst.task_state = new_task_state
        return migration

    def reopen() -> None:
        """Undo when the broker refused the message: the migration is finished again."""
        def finished_again(inst: Instance, m: Migration) -> None:
            if m.status == new_status:
                m.status = MigrationStatus.FINISHED

        assert candidate is not None
        update_server_and_migration(store, instance.id, candidate.uuid, finished_again)

    staged = MigrationChange(store, change)
    service.start_action(ctx, instance.id, action, staged.mutate, flow=flow,
                         params={"migration_uuid": candidate.uuid if candidate else None},
                         also=staged.write, undo=reopen)
    assert staged.migration is not None
    return staged.migration


def confirm_resize(service: ComputeService, ctx: RequestContext, instance: Instance) -> Migration:
    """Finish the move: the source is cleaned up and its claim released (the API answers 204).

    No task_state is set (Nova): the status stays VERIFY_RESIZE until it is done; the
    migration going finished -> confirming in the server's MULTI is what makes a second
    confirm, a revert, or another periodic process lose.
    """
    return _finish_the_move(service, ctx, instance, action=CONFIRM_RESIZE, method="confirm_resize",
                            flow="confirm_resize", new_status=MigrationStatus.CONFIRMING, new_task_state=None)


def revert_resize(service: ComputeService, ctx: RequestContext, instance: Instance) -> Migration:
    """Move the server back to its source; status REVERT_RESIZE while it runs.

    Unlike Nova, a revert whose source compute is down is refused (409) rather than
    destroying the copy on the destination and then failing.
    """
    return _finish_the_move(service, ctx, instance, action=REVERT_RESIZE, method="revert_resize",
                            flow="revert_resize", new_status=MigrationStatus.REVERTING,
                            new_task_state=TaskState.RESIZE_REVERTING)


def cancel_migration(service: ComputeService, ctx: RequestContext, instance: Instance,
                     migration_id: int | str) -> Migration:
    """Cancel a cold migration that has not reached the copy phase; everything rolls back.

    The migration goes pre-migrating -> cancelling in the same MULTI as the
    ``cold_migration_cancel`` action, so a 202 means the copy will never start: the copy
    step moves it pre-migrating -> migrating through the same server record, and only
    one of the two can win. The migrate flow then rolls itself back (it owns its claims)
    and marks the migration cancelled; the cancel's flow waits for that and reports it.
    The policy (admin) is the API's; like every change, locked servers are 409 for others.
    """
    store = service.store
    wanted = str(migration_id)

    def change(inst: Instance) -> Migration:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "cancel_migration", task_states=[TaskState.RESIZE_PREP])
        migration = store.get_migration(wanted) if wanted.isdigit() else None
        if migration is None or migration.instance_uuid != inst.id or migration.migration_type != COLD_MIGRATION:
            raise errors.NotFound(f"Migration {migration_id} not found for instance {inst.id}")
        if migration.status != MigrationStatus.PRE_MIGRATING:
            raise errors.Invalid(
                f"Migration {migration.id} state of instance {inst.id} is {migration.status}. "
                "Cannot cancel_migration while the migration is in this state.")
        migration.status = MigrationStatus.CANCELLING
        return migration

    staged = MigrationChange(store, change)

    def withdraw() -> None:
        """Undo when the broker refused the cancel: only if the migrate flow has not acted on it yet."""
        def reopen(inst: Instance, m: Migration) -> None:
            if m.status == MigrationStatus.CANCELLING:
                m.status = MigrationStatus.PRE_MIGRATING

        assert staged.migration is not None
        update_server_and_migration(store, instance.id, staged.migration.uuid, reopen)

    known = store.get_migration(wanted) if wanted.isdigit() else None
    service.start_action(
        ctx, instance.id, CANCEL_COLD_MIGRATION, staged.mutate, flow="cancel_cold_migration",
        params={"migration_uuid": known.uuid if known else None},
        also=staged.write, undo=withdraw,
    )
    assert staged.migration is not None
    return staged.migration
