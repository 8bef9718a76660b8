"""createBackup: the queued image is recorded with the state change, so it exists when the 202 leaves.

The flow (tasks/create_backup.py) snapshots, uploads and then rotates the (server,
backup_type) set under a lock, so concurrent backups never leave more than ``rotation``.
"""
from __future__ import annotations

from compute import errors, quotas
from compute.context import RequestContext
from compute.guards import check_instance_lock, check_instance_state, check_launched
from compute.instance_actions import CREATE_BACKUP
from compute.models import Image, Instance
from compute.service import ComputeService
from compute.states import TaskState, VmState

BACKUP_VM_STATES = (VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED)
# Properties a backup sets itself (nova/compute/utils.py create_image); metadata may not override them.
BACKUP_RESERVED_PROPERTIES = frozenset(
    {"image_type", "backup_type", "instance_uuid", "user_id", "instance_owner", "image_location",
     "image_state", "owner_id", "base_image_ref"})
# Never inherited from the server's image ([DEFAULT] non_inheritable_image_properties and friends).
NON_INHERITABLE_PROPERTIES = frozenset(
    {"cache_in_nova", "bittorrent", "cinder_encryption_key_id", "cinder_encryption_key_deletion_policy",
     "img_signature", "img_signature_hash_method", "img_signature_key_type",
     "img_signature_certificate_uuid"})


def create_backup(
    service: ComputeService,
    ctx: RequestContext,
    instance: Instance,
    *,
    name: str,
    backup_type: str,
    rotation: int,
    metadata: dict[str, str] | None = None,
) -> Image:
    """Record the image (queued) with the state change, so it exists when the 202 is sent."""
    metadata = metadata or {}
    # The caller's project quota, as Nova's check_img_metadata_properties_quota reads the context's.
    snapshot = service.store.quota_snapshot(ctx.project_id or "", ctx.user_id)
    quotas.check_image_metadata(service.settings.quota, snapshot, metadata)
    reserved = sorted(set(metadata) & BACKUP_RESERVED_PROPERTIES)
    if reserved:
        raise errors.Invalid(f"Backup metadata may not set the properties the backup sets itself: "
                             f"{', '.join(reserved)}")
    base = service.store.get_image(instance.image_id) if instance.image_id else None
    image = backup_image_record(ctx, instance, base, name, backup_type, metadata)

    def mutate(inst: Instance) -> None:
        check_instance_lock(ctx, inst)
        check_instance_state(inst, "createBackup", vm_states=BACKUP_VM_STATES)
        check_launched(inst, "createBackup")
        if inst.volume_backed:
            raise errors.Invalid("Backup is not supported for volume-backed instances.")
        inst.task_state = TaskState.IMAGE_BACKUP

    service.start_action(
        ctx, instance.id, CREATE_BACKUP, mutate,
        params={"image_id": image.id, "backup_type": backup_type, "rotation": rotation},
        also=lambda pipe: service.store.put_image(image, pipe),
        undo=lambda: service.store.delete_image(image.id),
    )
    return image


def backup_image_record(ctx: RequestContext, instance: Instance, base: Image | None, name: str,
                        backup_type: str, metadata: dict[str, str]) -> Image:
    """The queued image of a backup, with the properties Nova's ``create_image`` gives it.

    It inherits the server's original image (min_ram, min_disk, properties less the
    non-inheritable ones), then gets instance_uuid, user_id, image_type, the caller's
    metadata and, last, backup_type.
    """
    properties = {
        k: v for k, v in (base.properties if base else {}).items()
        if k not in NON_INHERITABLE_PROPERTIES and not k.startswith("os_glance")
    }
    properties.update({"instance_uuid": instance.id, "user_id": ctx.user_id or "", "image_type": "backup"})
    properties.update(metadata)
    properties["backup_type"] = backup_type
    visibility = "private"
    members: dict[str, str] = {}
    if ctx.project_id != instance.project_id:
        # nova/image/glance.py adds the server's project as a member of the shared image
        visibility = "shared"
        properties["instance_owner"] = instance.project_id
        members[instance.project_id] = "pending"
    formats = {"disk_format": base.disk_format, "container_format": base.container_format} if base else {}
    return Image(name=name, status="queued", owner=ctx.project_id, visibility=visibility,
                 min_ram=base.min_ram if base else 0, min_disk=base.min_disk if base else 0,
                 progress=0, properties=properties, members=members, **formats)
