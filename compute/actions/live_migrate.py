"""os-migrateLive (nova/compute/api.py ``live_migrate``): checks, the migration record, the flow.

Nova's synchronous checks run inside the task_state compare-and-set; the migration record,
status ``accepted``, is written in the same MULTI, so it exists when the 202 is sent. The
flow (tasks/live_migrate.py) chooses and checks the destination, then copies. Below 2.34
the API waits for those checks (:func:`wait_for_prechecks`), as Nova's RPC call does.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from compute import errors
from compute.context import RequestContext
from compute.guards import (
    check_compute_up,
    check_instance_lock,
    check_instance_state,
    check_launched,
)
from compute.instance_actions import LIVE_MIGRATION
from compute.migrations import current_status
from compute.models import Instance, Migration, utcnow
from compute.scheduler import public_reason
from compute.service import ComputeService
from compute.states import (
    LIVE_ENDED_IN_FAILURE,
    MigrationStatus,
    MigrationType,
    TaskState,
    VmState,
)

LIVE_MIGRATE_VM_STATES = (VmState.ACTIVE, VmState.PAUSED)


class PrecheckTimeout(errors.ComputeError):
    """The conductor's checks did not report back in time; the migration carries on regardless."""


@dataclass(frozen=True)
class LiveMigrationRequest:
    """An os-migrateLive body, already read for its microversion.

    ``block_migration`` None is ``"auto"``: decided per destination from the hosts' shared
    storage. ``force`` means the named host skips the scheduler (before 2.30 any named host
    does). ``checks_before_reply`` is the pre-2.34 mode, whose conductor event is
    ``conductor_migrate_server`` and whose caller waits for the checks.
    """

    host: str | None
    block_migration: bool | None
    disk_over_commit: bool | None = None
    force: bool = False
    checks_before_reply: bool = False

    def flow_params(self, migration_uuid: str) -> dict[str, Any]:
        return {"migration_uuid": migration_uuid, "host": self.host, "force": self.force,
                "block_migration": self.block_migration, "disk_over_commit": self.disk_over_commit,
                "checks_before_reply": self.checks_before_reply}


def live_migrate(service: ComputeService, ctx: RequestContext, instance: Instance,
                 request: LiveMigrationRequest) -> Migration:
    """Checks in Nova's order: lock (409), state (409), named host exists (400), source up (409)."""
    store = service.store
    migration = Migration(instance_uuid=instance.id, migration_type=MigrationType.LIVE, status=MigrationStatus.ACCEPTED,
                          dest_compute=request.host, user_id=ctx.user_id, project_id=ctx.project_id,
                          request_id=ctx.request_id)

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "os-migrateLive", vm_states=LIVE_MIGRATE_VM_STATES)
        check_launched(inst, "os-migrateLive")
        hosts = store.get_hosts_unzoned([name for name in (request.host, inst.host) if name])
        if request.host is not None and request.host not in hosts:
            raise errors.Invalid(f"Compute host {request.host} could not be found.")
        source = hosts.get(inst.host) if inst.host else None
        if source is None:
            raise errors.InstanceNotReady(f"Instance {inst.id} is not ready")
        check_compute_up(source)
        inst.task_state = TaskState.MIGRATING
        migration.source_compute, migration.source_node = inst.host, inst.node
        migration.old_instance_type_id = migration.new_instance_type_id = inst.flavor.id

    def hide_unqueued_migration() -> None:
        """The broker refused the flow, so the API answers 503: the request was refused, and its
        record is closed and hidden like a refused cold migration's, never listed as a failure."""
        def close(m: Migration) -> None:
            m.status, m.hidden = MigrationStatus.ERROR, True

        store.update_migration(migration.id, close)

    service.start_action(ctx, instance.id, LIVE_MIGRATION, guard,
                         params=request.flow_params(migration.uuid),
                         new_migration=migration, undo=hide_unqueued_migration, known=instance)
    return migration


def pause(seconds: float) -> None:
    """How the pre-2.34 wait passes time between looks at the store (API tests drive the engine here)."""
    time.sleep(seconds)


def wait_for_prechecks(service: ComputeService, instance: Instance, migration: Migration,
                       timeout: float) -> None:
    """Below 2.34 Nova's API makes an RPC *call* to the conductor, so the reply waits for its checks.

    Returns once the migration has left ``accepted`` for ``queued`` or later: the destination is
    chosen and checked. Raises Invalid with the conductor's reason when the checks failed (Nova's
    400). On timeout it does what Nova does on a MessagingTimeout: writes an instance fault and
    raises (the API answers 500), while the migration itself carries on and ends in its record
    and instance action like any other.
    """
    deadline = time.monotonic() + timeout
    interval = 0.02
    while True:
        status = current_status(service.store, migration)
        if status in LIVE_ENDED_IN_FAILURE:
            raise errors.Invalid(precheck_failure_reason(service, migration))
        if status != MigrationStatus.ACCEPTED:
            return
        if time.monotonic() >= deadline:
            break
        pause(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 2, 0.25)
    reason = f"Timed out waiting for a reply to the live migration checks of {instance.id}"

    def record_fault(inst: Instance) -> None:
        inst.fault = {"code": 500, "message": reason, "created": utcnow()}

    service.store.update_instance(instance.id, record_fault)
    raise PrecheckTimeout(reason)


def precheck_failure_reason(service: ComputeService, migration: Migration) -> str:
    """The failed event's message, without the per-host explanation that only admins read in events."""
    events = service.store.list_events(migration.request_id or "")
    for event in events:
        if event.result == "Error" and event.details:
            return public_reason(event.details)
    run = service.store.get_run(migration.request_id or "")
    return public_reason(run.error) if run is not None and run.error else "Live migration pre-checks failed."
