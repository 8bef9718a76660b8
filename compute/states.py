"""Nova's state vocabularies, the server status map and the two transition tables.

Every task_state write goes through :func:`check_task_transition` and every migration
status write through :func:`check_migration_transition` (both called by the store), so a
flow cannot move a server or a migration into a state Nova would never show (mirrors
nova/compute/task_states.py, nova/compute/vm_states.py, nova/objects/migration.py and
nova/api/openstack/common.py ``_STATE_MAP``).
"""
from __future__ import annotations

from compute.errors import InvalidStateTransition


class VmState:
    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"


class TaskState:
    SCHEDULING = "scheduling"
    SPAWNING = "spawning"
    DELETING = "deleting"
    UPDATING_PASSWORD = "updating_password"
    IMAGE_BACKUP = "image_backup"
    IMAGE_PENDING_UPLOAD = "image_pending_upload"
    IMAGE_UPLOADING = "image_uploading"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    MIGRATING = "migrating"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"


class PowerState:
    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


ANY = "*"

# (from, to) pairs a flow may write. None is idle. ``ANY`` as source means "from any
# state" and is reserved for os-resetState and the delete/error paths, as in Nova.
TASK_TRANSITIONS: frozenset[tuple[str | None, str | None]] = frozenset(
    {
        (None, TaskState.SCHEDULING),
        (TaskState.SCHEDULING, TaskState.SPAWNING),
        (TaskState.SCHEDULING, None),
        (TaskState.SPAWNING, None),
        (ANY, TaskState.DELETING),
        (TaskState.DELETING, None),
        (None, TaskState.UPDATING_PASSWORD),
        (TaskState.UPDATING_PASSWORD, None),
        (None, TaskState.IMAGE_BACKUP),
        (TaskState.IMAGE_BACKUP, TaskState.IMAGE_PENDING_UPLOAD),
        (TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_UPLOADING),
        (TaskState.IMAGE_BACKUP, None),
        (TaskState.IMAGE_PENDING_UPLOAD, None),
        (TaskState.IMAGE_UPLOADING, None),
        (None, TaskState.MIGRATING),
        (TaskState.MIGRATING, None),
        (None, TaskState.RESIZE_PREP),
        (TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING),
        (TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED),
        (TaskState.RESIZE_MIGRATED, TaskState.RESIZE_FINISH),
        (TaskState.RESIZE_FINISH, None),
        (TaskState.RESIZE_PREP, None),
        (TaskState.RESIZE_MIGRATING, None),
        (TaskState.RESIZE_MIGRATED, None),
        (None, TaskState.RESIZE_REVERTING),
        (TaskState.RESIZE_REVERTING, None),
        # os-stop, os-start, pause, unpause, suspend, resume: set by the API, cleared by the flow.
        (None, TaskState.POWERING_OFF),
        (TaskState.POWERING_OFF, None),
        (None, TaskState.POWERING_ON),
        (TaskState.POWERING_ON, None),
        (None, TaskState.PAUSING),
        (TaskState.PAUSING, None),
        (None, TaskState.UNPAUSING),
        (TaskState.UNPAUSING, None),
        (None, TaskState.SUSPENDING),
        (TaskState.SUSPENDING, None),
        (None, TaskState.RESUMING),
        (TaskState.RESUMING, None),
        (ANY, None),
    }
)


def check_task_transition(current: str | None, new: str | None) -> None:
    if current == new:
        return
    if (current, new) in TASK_TRANSITIONS or (ANY, new) in TASK_TRANSITIONS:
        return
    raise InvalidStateTransition(f"task_state {current!r} -> {new!r} is not allowed")


_RESIZE_TASKS = {
    TaskState.RESIZE_PREP,
    TaskState.RESIZE_MIGRATING,
    TaskState.RESIZE_MIGRATED,
    TaskState.RESIZE_FINISH,
}

_STATUS_DEFAULT = {
    VmState.ACTIVE: "ACTIVE",
    VmState.BUILDING: "BUILD",
    VmState.STOPPED: "SHUTOFF",
    VmState.RESIZED: "VERIFY_RESIZE",
    VmState.PAUSED: "PAUSED",
    VmState.SUSPENDED: "SUSPENDED",
    VmState.RESCUED: "RESCUE",
    VmState.ERROR: "ERROR",
    VmState.DELETED: "DELETED",
    VmState.SOFT_DELETED: "SOFT_DELETED",
    VmState.SHELVED: "SHELVED",
    VmState.SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
}

PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"})
FAULT_STATUSES = frozenset({"ERROR", "DELETED"})


def server_status(vm_state: str, task_state: str | None) -> str:
    """Nova's status for a (vm_state, task_state) pair."""
    if vm_state == VmState.ACTIVE:
        if task_state == TaskState.MIGRATING:
            return "MIGRATING"
        if task_state in _RESIZE_TASKS:
            return "RESIZE"
        if task_state == TaskState.UPDATING_PASSWORD:
            return "PASSWORD"
    elif vm_state == VmState.STOPPED and task_state in _RESIZE_TASKS:
        return "RESIZE"
    elif vm_state == VmState.RESIZED and task_state == TaskState.RESIZE_REVERTING:
        return "REVERT_RESIZE"
    elif vm_state == VmState.PAUSED and task_state == TaskState.MIGRATING:
        return "MIGRATING"
    return _STATUS_DEFAULT.get(vm_state, "UNKNOWN")


class MigrationType:
    LIVE = "live-migration"
    COLD = "migration"
    RESIZE = "resize"


class MigrationStatus:
    """One vocabulary for both kinds (nova-contract.md section 6); ``cancelling`` is ours."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    PREPARING = "preparing"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PRE_MIGRATING = "pre-migrating"
    MIGRATING = "migrating"
    POST_MIGRATING = "post-migrating"
    FINISHED = "finished"
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    REVERTING = "reverting"
    REVERTED = "reverted"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    ERROR = "error"


_M = MigrationStatus
# A live migration moves through these in order (a rerun may find itself further on).
LIVE_PROGRESSION = (_M.ACCEPTED, _M.QUEUED, _M.PREPARING, _M.RUNNING, _M.COMPLETED)
LIVE_ENDED_IN_FAILURE = frozenset({_M.ERROR, _M.FAILED, _M.CANCELLED})
# What GET /servers/{id}/migrations and the os-migrations links call "in progress".
IN_PROGRESS = (_M.QUEUED, _M.PREPARING, _M.RUNNING, _M.POST_MIGRATING)
MIGRATION_ENDED = frozenset({_M.COMPLETED, _M.FAILED, _M.CONFIRMED, _M.REVERTED, _M.CANCELLED, _M.ERROR})

# Forward moves, and the undo moves a refused enqueue or a rolled-back confirm/revert/cancel makes.
MIGRATION_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (_M.ACCEPTED, _M.QUEUED),
        (_M.QUEUED, _M.PREPARING),
        (_M.PREPARING, _M.RUNNING),
        (_M.RUNNING, _M.COMPLETED),
        (_M.PRE_MIGRATING, _M.MIGRATING),
        (_M.MIGRATING, _M.POST_MIGRATING),
        (_M.POST_MIGRATING, _M.FINISHED),
        (_M.FINISHED, _M.CONFIRMING),
        (_M.CONFIRMING, _M.CONFIRMED),
        (_M.CONFIRMING, _M.FINISHED),
        (_M.FINISHED, _M.REVERTING),
        (_M.REVERTING, _M.REVERTED),
        (_M.REVERTING, _M.FINISHED),
        (_M.PRE_MIGRATING, _M.CANCELLING),
        (_M.CANCELLING, _M.PRE_MIGRATING),
        (_M.CANCELLING, _M.CANCELLED),
    }
)
# A live migration that has not ended may fail or be aborted from wherever it is.
_LIVE_FAILURE_MOVES = {(s, end) for s in LIVE_PROGRESSION[:-1] for end in (_M.FAILED, _M.CANCELLED)}


def check_migration_transition(current: str, new: str) -> None:
    """Any migration that has not ended may end in ``error``; every other move is in the table."""
    if current == new:
        return
    if current not in MIGRATION_ENDED and new == _M.ERROR:
        return
    if (current, new) in MIGRATION_TRANSITIONS or (current, new) in _LIVE_FAILURE_MOVES:
        return
    raise InvalidStateTransition(f"migration status {current!r} -> {new!r} is not allowed")
