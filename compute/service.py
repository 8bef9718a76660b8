"""The compute service layer ("nova/compute/api.py"): guard, compare-and-set, record, enqueue.

Every write the API makes goes through here in four steps, in this order:
1. state guard (the semantics of Nova's ``@check_instance_state`` and lock check),
2. the task_state compare-and-set, in the same Redis MULTI as
3. the instance action record and its flow run,
4. the enqueue. If the broker refuses it, the state change and the action are undone
   and QueueUnavailable tells the API to answer 503.
Policy is the API's business and has already passed when these methods run.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from compute import errors
from compute.context import RequestContext
from compute.models import (
    ActionEvent,
    Flavor,
    FlowRun,
    Host,
    HostUsage,
    Image,
    Instance,
    InstanceAction,
)
from compute.queue import Enqueuer
from compute.settings import Settings
from compute.states import TaskState, VmState
from compute.store import Store

# Action names recorded in os-instance-actions (nova/compute/instance_actions.py).
CREATE = "create"
DELETE = "delete"
RESET_STATE = "resetState"
CHANGE_PASSWORD = "changePassword"
INJECT_NETWORK_INFO = "injectNetworkInfo"
RESET_NETWORK = "resetNetwork"
CREATE_BACKUP = "createBackup"

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


def check_instance_state(
    inst: Instance,
    method: str,
    vm_states: Iterable[str] | None = None,
    task_states: Iterable[str | None] | None = (None,),
) -> None:
    """Nova's ``@check_instance_state``: vm_state first, then task_state."""
    if vm_states is not None and inst.vm_state not in set(vm_states):
        raise errors.InstanceInvalidState(method, inst.id, "vm_state", inst.vm_state)
    if task_states is not None and inst.task_state not in set(task_states):
        raise errors.InstanceInvalidState(method, inst.id, "task_state", inst.task_state)


def check_instance_lock(ctx: RequestContext, inst: Instance) -> None:
    if inst.locked and not ctx.is_admin:
        raise errors.InstanceIsLocked(inst.id)


def check_instance_host(inst: Instance, method: str) -> None:
    if not inst.host:
        raise errors.InstanceNotReady(f"Cannot '{method}' instance {inst.id}: it has no host")


class ComputeService:
    def __init__(self, store: Store, enqueuer: Enqueuer, settings: Settings) -> None:
        self.store = store
        self.enqueuer = enqueuer
        self.settings = settings

    # ---- reads ------------------------------------------------------------------------
    def get_instance(self, ctx: RequestContext, instance_id: str, *, allow_deleted: bool = False) -> Instance:
        """Project-scoped for non-admins, like Nova's DB query: others' servers are 404."""
        inst = self.store.get_instance(instance_id)
        if inst is None or (inst.deleted and not allow_deleted):
            raise errors.InstanceNotFound(instance_id)
        if not ctx.is_admin and inst.project_id != ctx.project_id:
            raise errors.InstanceNotFound(instance_id)
        return inst

    def list_instances(self, ctx: RequestContext, *, all_projects: bool = False,
                       include_deleted: bool = False) -> list[Instance]:
        """Newest first."""
        found = []
        for inst in reversed(self.store.list_instances()):
            if inst.deleted and not include_deleted:
                continue
            if not (ctx.is_admin and all_projects) and inst.project_id != ctx.project_id:
                continue
            found.append(inst)
        return found

    def get_flavor(self, flavor_id: str) -> Flavor:
        flavor = self.store.get_flavor(str(flavor_id))
        if flavor is None:
            raise errors.NotFound(f"Flavor {flavor_id} could not be found.")
        return flavor

    def list_flavors(self) -> list[Flavor]:
        return sorted(self.store.list_flavors(), key=lambda f: (f.ram, f.id))

    def visible_image(self, ctx: RequestContext, image: Image | None) -> bool:
        return image is not None and image.status != "deleted" and (
            ctx.is_admin or image.visibility == "public" or image.owner == ctx.project_id)

    def get_image(self, ctx: RequestContext, image_id: str) -> Image:
        image = self.store.get_image(image_id)
        if not self.visible_image(ctx, image):
            raise errors.NotFound(f"Image {image_id} could not be found.")
        assert image is not None
        return image

    def list_images(self, ctx: RequestContext) -> list[Image]:
        return [i for i in reversed(self.store.list_images()) if self.visible_image(ctx, i)]

    def delete_image(self, ctx: RequestContext, image_id: str) -> None:
        image = self.get_image(ctx, image_id)
        if not ctx.is_admin and image.owner != ctx.project_id:
            raise errors.NotFound(f"Image {image_id} could not be found.")
        self.store.delete_image(image_id)

    def list_hosts(self) -> list[tuple[Host, HostUsage]]:
        return [(h, self.store.get_usage(h.name)) for h in self.store.list_hosts()]

    def list_actions(self, instance: Instance) -> list[InstanceAction]:
        return self.store.list_actions(instance.id)

    def get_action(self, instance: Instance, request_id: str) -> tuple[InstanceAction, list[ActionEvent]]:
        action = self.store.get_action(request_id)
        if action is None or action.instance_uuid != instance.id:
            raise errors.NotFound(f"Action {request_id} not found")
        return action, self.store.list_events(request_id)

    # ---- the generic write path ---------------------------------------------------------
    def start_action(
        self,
        ctx: RequestContext,
        instance_id: str,
        action_name: str,
        guard_and_mutate: Callable[[Instance], None],
        *,
        flow: str | None = None,
        params: dict[str, Any] | None = None,
        also: Callable[[Any], None] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> Instance:
        action = InstanceAction(
            request_id=ctx.request_id, action=action_name, instance_uuid=instance_id,
            user_id=ctx.user_id, project_id=ctx.project_id,
        )
        if flow is None:
            action.finish_time = action.start_time
            return self.store.update_instance(instance_id, guard_and_mutate, action=action)
        run = FlowRun(request_id=ctx.request_id, flow=flow, instance_uuid=instance_id, params=params or {})
        before: dict[str, Any] = {}

        def mutate(inst: Instance) -> None:
            before.update(vm_state=inst.vm_state, task_state=inst.task_state)
            guard_and_mutate(inst)
            before.update(new_task_state=inst.task_state)

        inst = self.store.update_instance(
            instance_id, mutate, action=action, run=run, due_in=self.settings.engine.start_grace_seconds,
            also=also)
        self._enqueue_or_undo(action, before, undo)
        return inst

    def _enqueue_or_undo(self, action: InstanceAction, before: dict[str, Any],
                         undo: Callable[[], None] | None) -> None:
        try:
            self.enqueuer.enqueue(action.request_id, 0)
        except errors.QueueUnavailable:
            def restore(inst: Instance) -> None:
                if inst.task_state == before["new_task_state"]:
                    inst.vm_state = before["vm_state"]
                    inst.task_state = before["task_state"]

            try:
                if undo is not None:
                    undo()
                self.store.update_instance(action.instance_uuid, restore, undoing=True)
            finally:
                self.store.delete_action(action)
            raise

    # ---- actions ------------------------------------------------------------------------
    def reset_state(self, ctx: RequestContext, instance: Instance, state: str) -> Instance:
        """Synchronous, as in Nova: the state is written before the 202 and the action is finished."""
        def mutate(inst: Instance) -> None:
            inst.vm_state = VmState.ACTIVE if state == "active" else VmState.ERROR
            inst.task_state = None

        return self.start_action(ctx, instance.id, RESET_STATE, mutate)

    def inject_network_info(self, ctx: RequestContext, instance: Instance) -> Instance:
        def guard(inst: Instance) -> None:
            check_instance_lock(ctx, inst)
            check_instance_host(inst, "inject_network_info")

        return self.start_action(ctx, instance.id, INJECT_NETWORK_INFO, guard, flow="inject_network_info")

    def reset_network(self, ctx: RequestContext, instance: Instance) -> Instance:
        def guard(inst: Instance) -> None:
            check_instance_lock(ctx, inst)
            check_instance_host(inst, "reset_network")

        return self.start_action(ctx, instance.id, RESET_NETWORK, guard, flow="reset_network")

    def change_password(self, ctx: RequestContext, instance: Instance, password: str) -> Instance:
        def mutate(inst: Instance) -> None:
            check_instance_lock(ctx, inst)
            check_instance_state(inst, "set_admin_password", vm_states=[VmState.ACTIVE])
            inst.task_state = TaskState.UPDATING_PASSWORD

        return self.start_action(ctx, instance.id, CHANGE_PASSWORD, mutate, flow="change_password",
                                  params={"admin_password": password})

    def create_server(
        self,
        ctx: RequestContext,
        *,
        name: str,
        flavor_id: str,
        image_id: str | None,
        availability_zone: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Instance:
        try:
            flavor = self.get_flavor(flavor_id)
        except errors.NotFound as exc:
            raise errors.Invalid(exc.message) from None
        if image_id is not None:
            try:
                self.get_image(ctx, image_id)
            except errors.NotFound:
                raise errors.Invalid("Can not find requested image") from None
        zone, requested_host = self._parse_availability_zone(availability_zone)
        inst = Instance(
            name=name, project_id=ctx.project_id or "", user_id=ctx.user_id or "", flavor=flavor,
            image_id=image_id, availability_zone=zone, requested_host=requested_host,
            vm_state=VmState.BUILDING, task_state=TaskState.SCHEDULING, metadata=metadata or {},
        )
        action = InstanceAction(request_id=ctx.request_id, action=CREATE, instance_uuid=inst.id,
                                user_id=ctx.user_id, project_id=ctx.project_id)
        run = FlowRun(request_id=ctx.request_id, flow="create", instance_uuid=inst.id)
        self.store.create_instance(inst, action, run, due_in=self.settings.engine.start_grace_seconds)
        try:
            self.enqueuer.enqueue(ctx.request_id, 0)
        except errors.QueueUnavailable:
            self.store.delete_action(action)
            self.store.purge_instance_record(inst.id)
            raise
        return inst

    def _parse_availability_zone(self, value: str | None) -> tuple[str | None, str | None]:
        """``zone``, ``zone:host`` or ``zone:host:node``; the host part is checked by policy upstream."""
        if not value:
            return None, None
        zone, _, rest = value.partition(":")
        host = rest.split(":", 1)[0] or None
        zones = {h.availability_zone for h in self.store.list_hosts()}
        if zone and zone not in zones:
            raise errors.Invalid("The requested availability zone is not available")
        return zone or None, host

    def create_backup(
        self,
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
        reserved = sorted(set(metadata) & BACKUP_RESERVED_PROPERTIES)
        if reserved:
            raise errors.Invalid(f"Backup metadata may not set the properties the backup sets itself: "
                                 f"{', '.join(reserved)}")
        base = self.store.get_image(instance.image_id) if instance.image_id else None
        image = backup_image_record(ctx, instance, base, name, backup_type, metadata)

        def mutate(inst: Instance) -> None:
            check_instance_lock(ctx, inst)
            check_instance_state(inst, "backup", vm_states=BACKUP_VM_STATES)
            if not inst.launched_at:
                raise errors.InstanceInvalidState("backup", inst.id, "launched_at", None)
            if inst.volume_backed:
                raise errors.Invalid("Backup is not supported for volume-backed instances.")
            inst.task_state = TaskState.IMAGE_BACKUP

        self.start_action(
            ctx, instance.id, CREATE_BACKUP, mutate, flow="create_backup",
            params={"image_id": image.id, "backup_type": backup_type, "rotation": rotation},
            also=lambda pipe: self.store.put_image(image, pipe),
            undo=lambda: self.store.delete_image(image.id),
        )
        return image

    def delete_server(self, ctx: RequestContext, instance: Instance) -> Instance | None:
        """Idempotent: deleting a server that is already being deleted records nothing new."""
        if instance.task_state == TaskState.DELETING:
            return None

        def mutate(inst: Instance) -> None:
            check_instance_lock(ctx, inst)
            if inst.task_state == TaskState.DELETING:
                raise errors.Conflict(f"Instance {inst.id} is already being deleted")
            inst.task_state = TaskState.DELETING

        return self.start_action(ctx, instance.id, DELETE, mutate, flow="delete")


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
    if ctx.project_id != instance.project_id:
        visibility = "shared"
        properties["instance_owner"] = instance.project_id
    return Image(name=name, status="queued", owner=ctx.project_id, visibility=visibility,
                 min_ram=base.min_ram if base else 0, min_disk=base.min_disk if base else 0,
                 progress=0, properties=properties)


def name_matches(pattern: str, name: str) -> bool:
    """Nova treats the ``name`` filter as a regular expression; an invalid one matches literally."""
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name
