"""Live migration at the service layer (nova/compute/api.py ``live_migrate``,
``live_migrate_force_complete``, ``live_migrate_abort``) and the rules a destination must meet.

The API calls these after schema and policy. Each does Nova's synchronous checks inside the
task_state compare-and-set of ``ComputeService.start_action``, records its instance action and
queues its flow (tasks/live_migrate.py, tasks/live_migration_force_complete.py,
tasks/live_migration_abort.py). ``live_migrate`` also writes the migration record, status
``accepted``, in the same MULTI, so the record exists when the 202 is sent.

Abort and force-complete never touch the running migration's claims or state themselves:
the abort's flow moves the migration record to ``cancelled`` (a compare-and-set the
migration's own flow sees at its next step or poll, and then rolls back); force-complete's
flow asks the driver to converge the copy job the migration's flow is polling.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from compute import errors
from compute.context import RequestContext
from compute.models import Host, HostUsage, Instance, Migration, utcnow
from compute.scheduler import HostFilter
from compute.service import ComputeService, check_instance_lock, check_instance_state
from compute.states import TaskState, VmState

# Action names (nova/compute/instance_actions.py); the first is also the migration_type.
LIVE_MIGRATION = "live-migration"
LIVE_MIGRATION_FORCE_COMPLETE = "live_migration_force_complete"
LIVE_MIGRATION_CANCEL = "live_migration_cancel"

# Migration statuses of this flow (nova-contract section 6), in the order it moves through them.
ACCEPTED, QUEUED, PREPARING, RUNNING, COMPLETED = "accepted", "queued", "preparing", "running", "completed"
ERROR, FAILED, CANCELLED = "error", "failed", "cancelled"
PROGRESSION = (ACCEPTED, QUEUED, PREPARING, RUNNING, COMPLETED)
ENDED_IN_FAILURE = frozenset({ERROR, FAILED, CANCELLED})
# What GET /servers/{id}/migrations and the os-migrations links call "in progress".
IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")
ABORTABLE = (RUNNING,)
ABORTABLE_FROM_2_65 = (QUEUED, PREPARING, RUNNING)

LIVE_MIGRATE_VM_STATES = (VmState.ACTIVE, VmState.PAUSED)
SERVICE_UNAVAILABLE = "Service is unavailable at this time."



class InvalidMigrationState(errors.Invalid):
    def __init__(self, migration_id: int | str, instance_uuid: str, state: str, method: str) -> None:
        super().__init__(f"Migration {migration_id} state of instance {instance_uuid} is {state}. "
                         f"Cannot {method} while the migration is in this state.")


class MigrationNotFoundForInstance(errors.NotFound):
    def __init__(self, migration_id: int | str, instance_uuid: str) -> None:
        super().__init__(f"Migration {migration_id} not found for instance {instance_uuid}")


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


# ---- the three writes --------------------------------------------------------------------------
def live_migrate(service: ComputeService, ctx: RequestContext, instance: Instance,
                 request: LiveMigrationRequest) -> Migration:
    """Checks in Nova's order: lock (409), state (409), named host exists (400), source up (409)."""
    store = service.store
    migration = Migration(instance_uuid=instance.id, migration_type=LIVE_MIGRATION, status=ACCEPTED,
                          dest_compute=request.host, user_id=ctx.user_id, project_id=ctx.project_id,
                          request_id=ctx.request_id)

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "os-migrateLive", vm_states=LIVE_MIGRATE_VM_STATES)
        if not inst.launched_at:
            raise errors.InstanceInvalidState("os-migrateLive", inst.id, "launched_at", None)
        if request.host is not None and store.get_host(request.host) is None:
            raise errors.Invalid(f"Compute host {request.host} could not be found.")
        source = store.get_host(inst.host) if inst.host else None
        if source is None:
            raise errors.InstanceNotReady(f"Instance {inst.id} is not ready")
        if not source.up or source.forced_down:
            raise errors.Conflict(SERVICE_UNAVAILABLE)
        inst.task_state = TaskState.MIGRATING
        migration.source_compute, migration.source_node = inst.host, inst.node
        migration.old_instance_type_id = migration.new_instance_type_id = inst.flavor.id

    def undo() -> None:
        store.update_migration(migration.id, lambda m: setattr(m, "status", ERROR))

    service.start_action(ctx, instance.id, LIVE_MIGRATION, guard, flow="live_migrate",
                         params=request.flow_params(migration.uuid),
                         also=lambda pipe: store.create_migration(migration, pipe), undo=undo)
    return migration


def force_complete(service: ComputeService, ctx: RequestContext, instance: Instance,
                   migration_id: str) -> None:
    """Only an ACTIVE server's ``running`` live migration; a missing migration is a 400 here."""
    migration = migration_of(service, instance, migration_id)
    if migration is not None and migration.migration_type != LIVE_MIGRATION:
        raise InvalidMigrationState(migration.id, instance.id, migration.status, "force complete")

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "force_complete", vm_states=[VmState.ACTIVE],
                             task_states=[TaskState.MIGRATING])
        if migration is None:
            raise errors.Invalid(MigrationNotFoundForInstance(migration_id, inst.id).message)
        status = current_status(service, migration)
        if status != RUNNING:
            raise InvalidMigrationState(migration.id, inst.id, status, "force complete")

    service.start_action(ctx, instance.id, LIVE_MIGRATION_FORCE_COMPLETE, guard,
                         flow="live_migration_force_complete", params={"migration_id": migration_id})


def abort(service: ComputeService, ctx: RequestContext, instance: Instance, migration_id: str, *,
          abortable: Iterable[str] = ABORTABLE) -> None:
    """Any vm_state with task_state ``migrating``; ``abortable`` widens to queued/preparing from 2.65."""
    allowed = tuple(abortable)
    migration = migration_of(service, instance, migration_id)
    if migration is not None and migration.migration_type != LIVE_MIGRATION:
        raise InvalidMigrationState(migration.id, instance.id, migration.status, "abort live migration")

    def guard(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "abort live migration", vm_states=None, task_states=[TaskState.MIGRATING])
        if migration is None:
            raise MigrationNotFoundForInstance(migration_id, inst.id)
        status = current_status(service, migration)
        if status not in allowed:
            raise InvalidMigrationState(migration.id, inst.id, status, "abort live migration")

    service.start_action(ctx, instance.id, LIVE_MIGRATION_CANCEL, guard, flow="live_migration_abort",
                         params={"migration_id": migration_id, "abortable": list(allowed)})


# ---- reads ------------------------------------------------------------------------------------
def migration_of(service: ComputeService, instance: Instance, migration_id: str) -> Migration | None:
    """The server's migration with that id (any type), or None; ids are Nova's integers."""
    if not re.fullmatch(r"[0-9]{1,19}", str(migration_id)):
        return None
    migration = service.store.get_migration(int(migration_id))
    return migration if migration is not None and migration.instance_uuid == instance.id else None


def current_status(service: ComputeService, migration: Migration) -> str:
    fresh = service.store.get_migration(migration.id)
    return fresh.status if fresh is not None else migration.status


def in_progress_live_migrations(service: ComputeService, instance: Instance) -> list[Migration]:
    return [m for m in service.store.list_migrations(instance.id)
            if m.migration_type == LIVE_MIGRATION and m.status in IN_PROGRESS]


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
        status = current_status(service, migration)
        if status in ENDED_IN_FAILURE:
            raise errors.Invalid(precheck_failure_reason(service, migration))
        if status != ACCEPTED:
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


# ---- choosing a destination (nova/conductor/tasks/live_migrate.py and the libvirt checks) ------------
# Named CPU models, oldest first, per lineage: a guest using one runs on it or any later one
# (libvirt's compareCPU reduced to named models). Unknown models match only themselves.
CPU_LINEAGES = (
    ("Nehalem", "Westmere", "SandyBridge", "IvyBridge", "Haswell", "Broadwell", "Skylake-Client",
     "Skylake-Server", "Cascadelake-Server", "Icelake-Server", "SapphireRapids"),
    ("Opteron_G1", "Opteron_G2", "Opteron_G3", "Opteron_G4", "Opteron_G5"),
    ("EPYC", "EPYC-Rome", "EPYC-Milan", "EPYC-Genoa"),
)


def cpu_can_host(dest_model: str, guest_model: str) -> bool:
    if dest_model == guest_model:
        return True
    for lineage in CPU_LINEAGES:
        if dest_model in lineage and guest_model in lineage:
            return lineage.index(dest_model) >= lineage.index(guest_model)
    return False


def not_source_filter(source: Host) -> HostFilter:
    def check(host: Host, _usage: HostUsage) -> str | None:
        return "the server's current host" if host.name == source.name else None

    return check


def not_attempted_filter(attempted: dict[str, str]) -> HostFilter:
    """Hosts that already failed a check for this migration, with the reason they failed."""
    def check(host: Host, _usage: HostUsage) -> str | None:
        return attempted.get(host.name)

    return check


def hypervisor_type_filter(source: Host) -> HostFilter:
    def check(host: Host, _usage: HostUsage) -> str | None:
        if host.hypervisor_type != source.hypervisor_type:
            return f"HypervisorTypeFilter: {host.hypervisor_type}, the source is {source.hypervisor_type}"
        return None

    return check


def hypervisor_version_filter(source: Host) -> HostFilter:
    def check(host: Host, _usage: HostUsage) -> str | None:
        if host.hypervisor_version < source.hypervisor_version:
            return (f"HypervisorVersionFilter: version {host.hypervisor_version} is older than the "
                    f"source's {source.hypervisor_version}")
        return None

    return check


def cpu_model_filter(source: Host) -> HostFilter:
    def check(host: Host, _usage: HostUsage) -> str | None:
        if not cpu_can_host(host.cpu_model, source.cpu_model):
            return f"CPUModelFilter: {host.cpu_model} cannot run a guest using the source's {source.cpu_model}"
        return None

    return check


def destination_filters(source: Host, attempted: dict[str, str]) -> list[HostFilter]:
    return [not_source_filter(source), not_attempted_filter(attempted), hypervisor_type_filter(source),
            hypervisor_version_filter(source), cpu_model_filter(source)]


def forced_destination_problem(source: Host, dest: Host, instance: Instance, usage: HostUsage) -> str | None:
    """The conductor's checks on a host named with force (Nova section 5a), in its order and words."""
    if dest.name == source.name:
        return f"Unable to migrate instance ({instance.id}) to current host ({source.name})."
    if not dest.up or dest.forced_down:
        return f"Compute service of {dest.name} is unavailable at this time."
    free_ram = dest.memory_mb * dest.ram_allocation_ratio - usage.memory_mb_used
    if free_ram <= instance.flavor.ram:
        return (f"Migration pre-check error: Unable to migrate {instance.id} to {dest.name}: Lack of "
                f"memory(host:{int(free_ram)} <= instance:{instance.flavor.ram})")
    if dest.hypervisor_type != source.hypervisor_type:
        return "The supplied hypervisor type of is invalid."
    if dest.hypervisor_version < source.hypervisor_version:
        return "The instance requires a newer hypervisor version than has been provided."
    if not cpu_can_host(dest.cpu_model, source.cpu_model):
        return f"Unacceptable CPU info: {dest.cpu_model} cannot run a guest using {source.cpu_model}"
    return None


def shares_storage(source: Host, dest: Host, instance: Instance) -> bool:
    """libvirt's is_shared_instance_path / is_shared_block_storage, from the fleet's storage groups."""
    same_group = source.shared_storage is not None and source.shared_storage == dest.shared_storage
    return same_group or instance.volume_backed


def block_migration_for(source: Host, dest: Host, instance: Instance, requested: bool | None) -> bool:
    """``"auto"`` (None) becomes block migration exactly when nothing is shared; a wrong choice is an Invalid."""
    shared = shares_storage(source, dest, instance)
    if requested is None:
        return not shared
    if requested and shared:
        raise errors.Invalid(f"{source.name} is not on local storage: "
                             "Block migration can not be used with shared storage.")
    if not requested and not shared:
        raise errors.Invalid(f"{source.name} is not on shared storage: Shared storage live-migration "
                             "requires either shared storage or boot-from-volume with no local disks.")
    return requested


def disk_problem(dest: Host, usage: HostUsage, instance: Instance, disk_over_commit: bool) -> str | None:
    """Below 2.25 a block migration checks the destination's disk (over-commit counts the allocation ratio).

    ``usage`` already holds this migration's claim on ``dest``, so the claim is added back.
    """
    need = instance.flavor.total_disk_gb
    ratio = dest.disk_allocation_ratio if disk_over_commit else 1.0
    available = int(dest.local_gb * ratio - usage.local_gb_used + need)
    if available < need:
        return (f"Migration pre-check error: Unable to migrate {instance.id}: Disk of instance is too "
                f"large(available on destination host:{available} < need:{need})")
    return None


def transfer_gib(instance: Instance, block_migration: bool) -> float:
    """Nova's ``_live_migration_data_gb``: RAM (at least 2 GiB) plus, for block migration, disk (at least 2)."""
    ram = max(2.0, instance.flavor.ram / 1024)
    disk = max(2.0, float(instance.flavor.disk + instance.flavor.ephemeral)) if block_migration else 0.0
    return ram + disk


# ---- how a failed search is told -------------------------------------------------------------------
EXPLANATION_SEPARATOR = "\n"


def explain(rejections: dict[str, str], chosen: str | None = None) -> str:
    """One line for admins (event details): every candidate host and why it was not the one."""
    hosts = "; ".join(f"{host}: {why}" for host, why in sorted(rejections.items()))
    head = f"Chose {chosen}. " if chosen else ""
    return f"{head}Rejected: {hosts}" if hosts else f"{head}No other host was considered".strip()


def with_explanation(message: str, rejections: dict[str, str]) -> str:
    return f"{message}{EXPLANATION_SEPARATOR}{explain(rejections)}"


def public_reason(details: str) -> str:
    """The Nova message a failure starts with, without the host-by-host explanation."""
    return details.split(EXPLANATION_SEPARATOR, 1)[0]
