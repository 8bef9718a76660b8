"""The two transition tables: every move a flow makes is in them, and nothing else passes."""
from __future__ import annotations

import pytest

from compute.errors import InvalidStateTransition
from compute.states import (
    LIVE_PROGRESSION,
    MIGRATION_ENDED,
    MIGRATION_TRANSITIONS,
    MigrationStatus,
    TaskState,
    check_migration_transition,
    check_task_transition,
    server_status,
)

M = MigrationStatus
EVERY_STATUS = sorted(v for k, v in vars(MigrationStatus).items() if k.isupper())


@pytest.mark.parametrize("current, new", [
    (M.ACCEPTED, M.QUEUED), (M.QUEUED, M.PREPARING), (M.PREPARING, M.RUNNING), (M.RUNNING, M.COMPLETED),
    (M.RUNNING, M.CANCELLED), (M.QUEUED, M.FAILED), (M.ACCEPTED, M.ERROR),
    (M.PRE_MIGRATING, M.MIGRATING), (M.MIGRATING, M.POST_MIGRATING), (M.POST_MIGRATING, M.FINISHED),
    (M.FINISHED, M.CONFIRMING), (M.CONFIRMING, M.CONFIRMED), (M.CONFIRMING, M.FINISHED),
    (M.FINISHED, M.REVERTING), (M.REVERTING, M.REVERTED), (M.REVERTING, M.FINISHED),
    (M.PRE_MIGRATING, M.CANCELLING), (M.CANCELLING, M.PRE_MIGRATING), (M.CANCELLING, M.CANCELLED),
    (M.FINISHED, M.ERROR), (M.CONFIRMING, M.ERROR),
])
def test_migration__the_moves_the_flows_make_are_allowed(current: str, new: str) -> None:
    check_migration_transition(current, new)


@pytest.mark.parametrize("current, new", [
    (M.ACCEPTED, M.RUNNING),            # skips the checks and the queue
    (M.COMPLETED, M.CANCELLED),         # an abort that came too late
    (M.CONFIRMED, M.REVERTING),
    (M.ERROR, M.FAILED),                # an ended migration stays ended
    (M.CANCELLED, M.PRE_MIGRATING),
    (M.PRE_MIGRATING, M.FINISHED),
    (M.FINISHED, M.FAILED),             # failed is a live-migration status
    (M.MIGRATING, M.CANCELLING),        # the copy has begun: too late to cancel
])
def test_migration__moves_outside_the_table_are_refused(current: str, new: str) -> None:
    with pytest.raises(InvalidStateTransition, match=f"{current!r} -> {new!r}"):
        check_migration_transition(current, new)


@pytest.mark.parametrize("status", EVERY_STATUS)
def test_migration__staying_put_is_always_allowed(status: str) -> None:
    check_migration_transition(status, status)


@pytest.mark.parametrize("ended", sorted(MIGRATION_ENDED))
@pytest.mark.parametrize("new", EVERY_STATUS)
def test_migration__nothing_leaves_an_ended_status(ended: str, new: str) -> None:
    if new == ended:
        return
    with pytest.raises(InvalidStateTransition):
        check_migration_transition(ended, new)


def test_migration__the_table_names_only_known_statuses() -> None:
    named = {s for pair in MIGRATION_TRANSITIONS for s in pair} | set(LIVE_PROGRESSION)
    assert named <= set(EVERY_STATUS)


@pytest.mark.parametrize("current, new", [
    (None, TaskState.MIGRATING), (TaskState.MIGRATING, None), (TaskState.IMAGE_BACKUP, TaskState.IMAGE_PENDING_UPLOAD),
    (TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING), (TaskState.SPAWNING, TaskState.DELETING),
])
def test_task_state__allowed(current: str | None, new: str | None) -> None:
    check_task_transition(current, new)


@pytest.mark.parametrize("current, new", [
    (TaskState.MIGRATING, TaskState.RESIZE_PREP), (None, TaskState.IMAGE_UPLOADING),
    (TaskState.RESIZE_FINISH, TaskState.RESIZE_PREP), (TaskState.UPDATING_PASSWORD, TaskState.MIGRATING),
])
def test_task_state__refused(current: str | None, new: str | None) -> None:
    with pytest.raises(InvalidStateTransition):
        check_task_transition(current, new)


@pytest.mark.parametrize("vm_state, task_state, status", [
    ("active", "migrating", "MIGRATING"), ("paused", "migrating", "MIGRATING"), ("active", "resize_prep", "RESIZE"),
    ("stopped", "resize_migrating", "RESIZE"), ("resized", "resize_reverting", "REVERT_RESIZE"),
    ("resized", None, "VERIFY_RESIZE"), ("active", "updating_password", "PASSWORD"), ("error", None, "ERROR"),
])
def test_server_status__nova_state_map(vm_state: str, task_state: str | None, status: str) -> None:
    assert server_status(vm_state, task_state) == status
