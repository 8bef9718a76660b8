"""Every registered flow's shape: its version, its steps in order, and which of them undo something.

As Octavia tests its flows: a step added, removed, renamed or reordered, or a revert gained
or lost, fails here first. Changing a shape that running actions may be part-way through
also means raising the flow's ``version`` (tasks/step.py says why), so it is asserted too.
"""
from __future__ import annotations

import pytest

from compute.models import FlowRun
from tasks.registry import all_flows
from tasks.step import Flow, Step

# flow name (with the variant that changes its steps) -> (version, steps, steps with a real revert)
SHAPES: dict[tuple[str, str], tuple[int, list[str], list[str]]] = {
    ("changePassword", ""): (1, ["ClearPasswordTaskOnRevert", "SetAdminPassword", "FinishPasswordChange"],
                             ["ClearPasswordTaskOnRevert", "SetAdminPassword"]),
    ("cold_migration_cancel", ""): (1, ["AwaitMigrationRollback"], []),
    ("confirmResize", ""): (1, ["ConfirmCheckpoint", "DestroySourceCopy", "ReleaseSourceClaim", "MarkConfirmed"],
                            ["ConfirmCheckpoint", "DestroySourceCopy"]),
    ("create", ""): (1, ["BuildCheckpoint", "ScheduleAndClaim", "SpawnOnHost", "MarkActive"],
                     ["BuildCheckpoint", "ScheduleAndClaim", "SpawnOnHost"]),
    ("createBackup", ""): (1, ["ClearTaskStateOnRevert", "BeginSnapshot", "UploadSnapshot", "RotateBackups"],
                           ["ClearTaskStateOnRevert", "BeginSnapshot", "UploadSnapshot", "RotateBackups"]),
    ("delete", ""): (1, ["DeleteCheckpoint", "TerminateOnHost", "ReleaseClaims", "MarkDeleted"],
                     ["DeleteCheckpoint", "TerminateOnHost"]),
    ("injectNetworkInfo", ""): (1, ["InjectNetworkInfo"], ["InjectNetworkInfo"]),
    ("live-migration", ""): (
        1, ["RestoreOnFailure", "FindDestination", "RecordDestination", "QueueLiveMigration", "PreLiveMigration",
            "TransferGuest", "PostLiveMigration"],
        ["RestoreOnFailure", "FindDestination", "PreLiveMigration", "TransferGuest", "PostLiveMigration"]),
    ("live-migration", "checks_before_reply"): (
        1, ["RestoreOnFailure", "FindDestinationBeforeReply", "RecordDestinationBeforeReply", "QueueLiveMigration",
            "PreLiveMigration", "TransferGuest", "PostLiveMigration"],
        ["RestoreOnFailure", "FindDestinationBeforeReply", "PreLiveMigration", "TransferGuest",
         "PostLiveMigration"]),
    ("live_migration_cancel", ""): (1, ["CancelMigration", "AwaitRollback"], []),
    ("live_migration_force_complete", ""): (1, ["ForceCompleteLiveMigration"], []),
    ("migrate", ""): (
        1, ["MigrationCheckpoint", "SelectDestinations", "ClaimDestination", "RecordDestination",
            "CopyDiskAndPowerOff", "MoveToDestination", "FinishMigrationOnDestination", "MarkResized"],
        ["MigrationCheckpoint", "ClaimDestination", "CopyDiskAndPowerOff", "MoveToDestination",
         "FinishMigrationOnDestination"]),
    ("pause", ""): (1, ["PauseCheckpoint", "PauseGuest", "MarkPaused"], ["PauseCheckpoint", "PauseGuest"]),
    ("resume", ""): (1, ["ResumeCheckpoint", "ResumeGuest", "MarkResumed"], ["ResumeCheckpoint", "ResumeGuest"]),
    ("start", ""): (1, ["StartCheckpoint", "PowerOn", "MarkStarted"], ["StartCheckpoint", "PowerOn"]),
    ("stop", ""): (1, ["StopCheckpoint", "PowerOff", "MarkStopped"], ["StopCheckpoint", "PowerOff"]),
    ("suspend", ""): (1, ["SuspendCheckpoint", "SuspendGuest", "MarkSuspended"], ["SuspendCheckpoint", "SuspendGuest"]),
    ("unpause", ""): (1, ["UnpauseCheckpoint", "UnpauseGuest", "MarkUnpaused"], ["UnpauseCheckpoint", "UnpauseGuest"]),
    ("resetNetwork", ""): (1, ["ResetNetwork"], ["ResetNetwork"]),
    ("revertResize", ""): (
        1, ["RevertCheckpoint", "DestroyDestinationCopy", "ReleaseDestinationClaim", "FinishRevertOnSource",
            "MarkReverted"],
        ["RevertCheckpoint", "DestroyDestinationCopy", "FinishRevertOnSource"]),
}


def steps_of(flow: Flow, variant: str) -> list[Step]:
    params = {variant: True} if variant else {}
    return flow.steps(FlowRun(request_id="req-shape", flow=flow.name, instance_uuid="server", params=params))


def reverts(step: Step) -> bool:
    return type(step).revert is not Step.revert


def test_every_registered_flow_has_its_shape_listed() -> None:
    assert sorted(all_flows()) == sorted({name for name, _ in SHAPES})


@pytest.mark.parametrize(("name", "variant"), sorted(SHAPES))
def test_flow_shape(name: str, variant: str) -> None:
    flow = all_flows()[name]
    version, names, reverting = SHAPES[(name, variant)]
    steps = steps_of(flow, variant)
    assert flow.version == version
    assert [s.name for s in steps] == names
    assert [s.name for s in steps if reverts(s)] == reverting
