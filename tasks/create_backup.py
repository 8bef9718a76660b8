"""createBackup: snapshot, upload, rotate (nova/compute/manager.py ``backup_instance``).

task_state image_backup -> image_pending_upload -> image_uploading -> None; the image goes
queued -> saving -> active. All three steps form Nova's one ``compute_backup_instance`` event.
On failure before the upload finished, the image is deleted and task_state cleared; vm_state
never changes. Rotation keeps the ``rotation`` newest backups of this (server, backup_type),
the new one included, so rotation 0 deletes them all.
"""
from __future__ import annotations

import logging

from compute import instance_actions
from compute.driver import OperationStatus
from compute.errors import DriverError
from compute.models import FlowRun, Image, Instance
from compute.states import TaskState
from tasks.instance_steps import DriverOperation, accepted_since
from tasks.step import Checkpoint, Flow, FlowContext, Step, StepFailed, Wait

LOG = logging.getLogger(__name__)

_IMAGE_TASKS = (TaskState.IMAGE_BACKUP, TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_UPLOADING)
EVENT = "compute_backup_instance"


def move_task_state(fc: FlowContext, expected: tuple[str, ...], new: str | None, *,
                    progress: int | None = None) -> None:
    """Move task_state (and the server's ``progress``, if given) only from the states this backup
    put there (a rerun finds it moved).

    A rerun after a newer backup began finds that backup's image_* states, and leaves them. A
    server this delivery saw in none of ``expected`` is not written: only a newer backup puts one
    back (an image_backup), and the compare-and-set would leave that one's alone.
    """
    if fc.instance().task_state not in expected:
        return

    def move(i: Instance) -> None:
        if i.task_state in expected and not accepted_since(fc, instance_actions.CREATE_BACKUP):
            i.task_state = new
            if progress is not None:
                i.progress = progress

    fc.update_instance(move)


class ClearTaskStateOnRevert(Checkpoint):
    def revert(self, fc: FlowContext) -> None:
        image = fc.store.get_image(fc.params["image_id"])
        if image is None or image.status != "active":
            move_task_state(fc, _IMAGE_TASKS, None, progress=0)


class BeginSnapshot(Step):
    event = EVENT

    def execute(self, fc: FlowContext) -> None:
        def saving(image: Image) -> None:
            image.status = "saving"

        if fc.store.update_image(fc.params["image_id"], saving) is None:
            raise StepFailed(f"Image {fc.params['image_id']} was deleted before the snapshot started")
        move_task_state(fc, (TaskState.IMAGE_BACKUP,), TaskState.IMAGE_PENDING_UPLOAD)

    def revert(self, fc: FlowContext) -> None:
        """delete_image_on_error: an image that never became active is removed."""
        image = fc.store.get_image(fc.params["image_id"])
        if image is not None and image.status != "active":
            fc.store.delete_image(image.id)


class UploadSnapshot(DriverOperation):
    """The snapshot and its upload; the image's progress follows the upload while it is ``saving``,
    and so does the server's (as a copy's does during a migration), back to 0 once it is done."""

    event = EVENT
    operation = "snapshot"
    shows_progress = True

    def execute(self, fc: FlowContext) -> Wait | None:
        move_task_state(fc, (TaskState.IMAGE_PENDING_UPLOAD,), TaskState.IMAGE_UPLOADING)
        return super().execute(fc)

    def on_progress(self, fc: FlowContext, status: OperationStatus) -> None:
        def uploading(image: Image) -> None:
            if image.status == "saving":
                image.progress = status.progress

        fc.store.update_image(fc.params["image_id"], uploading)
        server = fc.instance()
        if server.task_state == TaskState.IMAGE_UPLOADING and server.progress != status.progress:
            move_task_state(fc, (TaskState.IMAGE_UPLOADING,), TaskState.IMAGE_UPLOADING,
                            progress=status.progress)

    def on_done(self, fc: FlowContext, status: OperationStatus) -> None:
        def activate(image: Image) -> None:
            image.status = "active"
            image.progress = 100
            image.size = int(status.details.get("size", 0))

        image = fc.store.update_image(fc.params["image_id"], activate)
        if image is None:
            raise StepFailed(f"Image {fc.params['image_id']} was deleted during the upload")
        fc.store.add_backup(fc.run.instance_uuid, fc.params["backup_type"], image)
        move_task_state(fc, (TaskState.IMAGE_UPLOADING,), None, progress=0)

    def revert(self, fc: FlowContext) -> None:
        super().revert(fc)
        BeginSnapshot().revert(fc)


class RotateBackups(Step):
    """Delete the backups past ``rotation``, holding the (server, backup_type) rotation lock.

    The lock's owner is this action, so a resumed rotation takes it back at once; another
    backup's rotation waits (without a worker slot) until it is free. A backend failure to
    delete one image is skipped and that image kept, as in Nova.
    """

    event = EVENT

    def execute(self, fc: FlowContext) -> Wait | None:
        if not self.rotate_under_lock(fc):
            return fc.backoff()  # another backup of this server rotates
        return None

    def revert(self, fc: FlowContext) -> None:
        """An uploaded backup stays, so its rotation is still owed: the set never exceeds ``rotation``.

        If another backup holds the lock, its own rotation trims the set, this image included.
        """
        image = fc.store.get_image(fc.params["image_id"])
        if image is not None and image.status == "active":
            self.rotate_under_lock(fc)
        fc.store.release_rotation_lock(fc.run.instance_uuid, fc.params["backup_type"], fc.request_id)

    @staticmethod
    def rotate_under_lock(fc: FlowContext) -> bool:
        """Rotate and return True, or return False at once when another rotation holds the lock."""
        ttl = fc.settings.engine.lease_ttl_seconds
        backup_type = fc.params["backup_type"]
        if not fc.store.acquire_rotation_lock(fc.run.instance_uuid, backup_type, fc.request_id, ttl):
            return False
        inst = fc.instance()
        for image_id in fc.store.backups_past_rotation(inst.id, backup_type, int(fc.params["rotation"])):
            try:
                fc.driver.delete_snapshot(inst.host or "", image_id)
            except DriverError as exc:
                LOG.warning("backup %s of %s not rotated out: %s", image_id, inst.id, exc.message)
                continue
            fc.store.delete_image(image_id)
        fc.store.release_rotation_lock(fc.run.instance_uuid, backup_type, fc.request_id)
        return True


class CreateBackupFlow(Flow):
    name = instance_actions.CREATE_BACKUP

    def steps(self, run: FlowRun) -> list[Step]:
        return [ClearTaskStateOnRevert(), BeginSnapshot(), UploadSnapshot(), RotateBackups()]
