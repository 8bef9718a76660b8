"""The compute service layer ("nova/compute/api.py"): the reads, and the one write path.

Each action's own module under compute/actions/ holds its guards and calls
:meth:`ComputeService.start_action`, which makes every write in four steps, in this order:
1. state guard (the semantics of Nova's ``@check_instance_state`` and lock check),
2. the task_state compare-and-set, in the same Redis MULTI as
3. the instance action record and its flow run,
4. the enqueue. If the broker refuses it, the state change and the action are undone
   and QueueUnavailable tells the API to answer 503.
Given the server as the caller read it (``known``), steps 1-3 are made on that copy and written by
one script while the stored record is still exactly that copy (``Store.accept_on_known``); a record
that moved on meanwhile sends the accept through the MULTI above, which decides on the record read
afresh, so two racing accepts still have one winner and a 409.
Policy is the API's business and has already passed when these methods run.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compute import errors, images, telemetry
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
    Migration,
)
from compute.queue import Enqueuer
from compute.settings import Settings
from compute.store import Store


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
        return images.is_visible(ctx, image)

    def get_image(self, ctx: RequestContext, image_id: str) -> Image:
        image = self.store.get_image(image_id)
        if not self.visible_image(ctx, image):
            raise errors.NotFound(f"Image {image_id} could not be found.")
        assert image is not None
        return image

    def delete_image(self, ctx: RequestContext, image_id: str) -> None:
        image = self.get_image(ctx, image_id)
        if not images.is_owner(ctx, image):
            raise errors.NotFound(f"Image {image_id} could not be found.")
        self.store.delete_image(image_id)

    def list_hosts(self) -> list[tuple[Host, HostUsage]]:
        """Every host with its usage: the records in one MGET, the usage in one pipeline (not a read each)."""
        usage = self.store.usage_by_host()
        return [(h, usage.get(h.name, HostUsage())) for h in self.store.list_hosts()]

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
        run_flow: bool = True,
        params: dict[str, Any] | None = None,
        also: Callable[[Any], None] | None = None,
        undo: Callable[[], None] | None = None,
        new_migration: Migration | None = None,
        known: Instance | None = None,
    ) -> Instance:
        """``new_migration``: the record of the move this action starts, written in the same MULTI;
        its id and the action's sequence number are taken together (one round trip).
        ``known``: the server as the caller read it (left unchanged). A flow's accept with no ``also``
        is then guarded on that copy and written in one script while the record is still exactly
        that (``Store.accept_on_known``); else it is guarded and written on the record read afresh."""
        action = InstanceAction(
            request_id=ctx.request_id, action=action_name, instance_uuid=instance_id,
            user_id=ctx.user_id, project_id=ctx.project_id,
        )
        if not run_flow:
            action.finish_time = action.start_time
            return self.store.update_instance(instance_id, guard_and_mutate, action=action, also=also)
        run = FlowRun(request_id=ctx.request_id, flow=action_name, instance_uuid=instance_id, params=params or {})
        due_in = self.settings.engine.start_grace_seconds
        before: dict[str, Any] = {}

        def mutate(inst: Instance) -> None:
            before.update(vm_state=inst.vm_state, task_state=inst.task_state)
            guard_and_mutate(inst)
            before.update(new_task_state=inst.task_state)

        inst = None
        if known is not None and known.id == instance_id and also is None:
            inst = self.store.accept_on_known(known, mutate, action, run, due_in, new_migration)
        if inst is None:
            inst = self._accept_on_stored(instance_id, mutate, action, run, due_in, also, new_migration)
        self._enqueue_or_undo(action, before, undo)
        telemetry.observer().action_accepted(action_name)
        return inst

    def _accept_on_stored(self, instance_id: str, mutate: Callable[[Instance], None], action: InstanceAction,
                          run: FlowRun, due_in: float, also: Callable[[Any], None] | None,
                          new_migration: Migration | None) -> Instance:
        """The accept's compare-and-set under WATCH of the record read afresh, with every write in its MULTI."""
        seq = None
        writes = also
        if new_migration is not None:
            seq = self.store.reserve_migration_id(new_migration)

            def writes(pipe: Any) -> None:
                self.store.create_migration(new_migration, pipe)
                if also is not None:
                    also(pipe)

        return self.store.update_instance(instance_id, mutate, action=action, run=run, due_in=due_in,
                                          also=writes, seq=seq)

    def _enqueue_or_undo(self, action: InstanceAction, before: dict[str, Any],
                         undo: Callable[[], None] | None) -> None:
        try:
            self.enqueuer.enqueue(action.request_id, 0, action=action.action, server_id=action.instance_uuid)
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
