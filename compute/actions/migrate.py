"""migrate (nova/compute/api.py ``resize`` without a new flavor): accept a cold migration.

Scheduling is asynchronous (Nova since Ussuri): no valid host shows in the action. The
migration record is written with the server, as every cold-migration change is
(compute/migrations.py).
"""
from __future__ import annotations

from compute import errors
from compute.context import RequestContext
from compute.guards import (
    check_compute_up,
    check_instance_lock,
    check_instance_state,
    check_launched,
)
from compute.instance_actions import MIGRATE
from compute.migrations import update_server_and_migration
from compute.models import Host, Instance, Migration
from compute.service import ComputeService
from compute.states import MigrationStatus, MigrationType, TaskState, VmState

MIGRATE_VM_STATES = (VmState.ACTIVE, VmState.STOPPED)


def check_requested_host(inst: Instance, host: str, hosts: dict[str, Host]) -> None:
    """``hosts``: what the store has of the source and the requested host, read together."""
    if host == inst.host:
        raise errors.Invalid("Cannot migrate to the host where the server exists.")
    if host not in hosts:
        raise errors.Invalid(f"Compute host {host} could not be found.")


def migrate(service: ComputeService, ctx: RequestContext, instance: Instance,
            host: str | None = None) -> Migration:
    """Accept a cold migration: task_state resize_prep and a pre-migrating record, then the flow.

    Scheduling is asynchronous (Nova since Ussuri): no valid host shows in the action.
    """
    store = service.store
    migration = Migration(instance_uuid=instance.id, migration_type=MigrationType.COLD,
                          status=MigrationStatus.PRE_MIGRATING, user_id=ctx.user_id,
                          project_id=ctx.project_id, request_id=ctx.request_id)

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "migrate", vm_states=MIGRATE_VM_STATES)
        check_launched(inst, "migrate")
        if not inst.host:
            raise errors.InstanceNotReady(f"Instance {inst.id} is not ready")
        hosts = store.get_hosts_unzoned([inst.host] if host is None else [inst.host, host])
        check_compute_up(hosts.get(inst.host))
        if host is not None:
            check_requested_host(inst, host, hosts)
        inst.task_state = TaskState.RESIZE_PREP
        inst.progress = 0
        migration.source_compute, migration.source_node = inst.host, inst.node
        migration.old_instance_type_id = migration.new_instance_type_id = inst.flavor.id

    def hide_unqueued_migration() -> None:
        def close(inst: Instance, m: Migration) -> None:
            m.status, m.hidden = MigrationStatus.ERROR, True

        update_server_and_migration(store, instance.id, migration.uuid, close)

    service.start_action(
        ctx, instance.id, MIGRATE, guard,
        params={"migration_uuid": migration.uuid, "requested_host": host},
        new_migration=migration,
        undo=hide_unqueued_migration,
        known=instance,
    )
    return migration
