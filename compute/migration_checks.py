"""The rules a live-migration destination must meet (nova/conductor/tasks/live_migrate.py and the
libvirt driver's checks), as scheduler filters and as the checks on a forced host.
"""
from __future__ import annotations

from compute import errors
from compute.models import Host, HostUsage, Instance
from compute.scheduler import HostFilter

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
    if not dest.in_service:
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
