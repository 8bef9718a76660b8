"""Which vm_state, task_state and lock each action refuses, and how: actions × states × locked × caller.

The expectation is Nova's rules written out here on their own (nova/compute/api.py decorators
and the API's messages, ../shared/spec/nova-operator-surface.md §16), not read from the code
under test. In Nova's order: policy (403), lock (409 for non-admins), host set (os-stop and
os-start only), vm_state, task_state, launched_at (each 409); else accepted. A refused
request changes nothing and records no action.

One deliberate difference, documented in README.md: createBackup refuses a locked server to
non-admins (Nova does not check the lock for backups).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from compute.models import Instance
from compute.states import PowerState, TaskState, VmState
from tests.api.conftest import ADMIN, OWNER, activate, mv, set_fields

A, S, P, U, E = VmState.ACTIVE, VmState.STOPPED, VmState.PAUSED, VmState.SUSPENDED, VmState.ERROR


@dataclass(frozen=True)
class Rule:
    body: dict[str, Any]
    name: str  # the action named in Nova's 409 messages
    vm_states: frozenset[str] | None  # None: no state check (lock, unlock)
    lock_checked: bool = True
    host_checked: bool = False  # Nova's check_instance_host() before the state check
    admin_only: bool = False  # classic policy default admin_api


RULES: dict[str, Rule] = {
    "os-stop": Rule({"os-stop": None}, "stop", frozenset({A, E}), host_checked=True),
    "os-start": Rule({"os-start": None}, "start", frozenset({S}), host_checked=True),
    "pause": Rule({"pause": None}, "pause", frozenset({A})),
    "unpause": Rule({"unpause": None}, "unpause", frozenset({P})),
    "suspend": Rule({"suspend": None}, "suspend", frozenset({A})),
    "resume": Rule({"resume": None}, "resume", frozenset({U})),
    "os-migrateLive": Rule({"os-migrateLive": {"host": None, "block_migration": "auto"}}, "os-migrateLive",
                           frozenset({A, P}), admin_only=True),
    "migrate": Rule({"migrate": None}, "migrate", frozenset({A, S}), admin_only=True),
    "createBackup": Rule({"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}, "createBackup",
                         frozenset({A, S, P, U})),
    "changePassword": Rule({"changePassword": {"adminPass": "pw"}}, "changePassword", frozenset({A})),
    "lock": Rule({"lock": None}, "lock", None, lock_checked=False),
    "unlock": Rule({"unlock": None}, "unlock", None, lock_checked=False),
}

POWER = {A: PowerState.RUNNING, S: PowerState.SHUTDOWN, P: PowerState.PAUSED, U: PowerState.SUSPENDED,
         E: PowerState.SHUTDOWN, VmState.RESIZED: PowerState.RUNNING}


@dataclass(frozen=True)
class State:
    vm_state: str
    task_state: str | None = None
    on_host: bool = True
    launched: bool = True


STATES: dict[str, State] = {
    "active": State(A),
    "stopped": State(S),
    "paused": State(P),
    "suspended": State(U),
    "error": State(E),
    "verify_resize": State(VmState.RESIZED),
    "building": State(VmState.BUILDING, TaskState.SCHEDULING, on_host=False, launched=False),
    "active-powering-off": State(A, TaskState.POWERING_OFF),
    "stopped-powering-on": State(S, TaskState.POWERING_ON),
    "paused-unpausing": State(P, TaskState.UNPAUSING),
    "suspended-resuming": State(U, TaskState.RESUMING),
    "active-image-backup": State(A, TaskState.IMAGE_BACKUP),
    "error-never-launched": State(E, launched=False),
    "error-without-host": State(E, on_host=False, launched=False),
}
CALLERS = {"owner": OWNER, "admin": ADMIN}


def expected(key: str, state: State, locked: bool, caller: str, server_id: str) -> tuple[int, str | None]:
    """Nova's answer, in Nova's order of checks."""
    rule = RULES[key]
    if rule.admin_only and caller != "admin":
        return 403, None
    if key == "unlock" and locked and caller == "owner":  # locked by an admin: unlock_override
        return 403, None
    if rule.lock_checked and locked and caller != "admin":
        return 409, f"Instance {server_id} is locked"
    if rule.vm_states is None:
        return 202, None
    if rule.host_checked and not state.on_host:
        return 409, f"Instance {server_id} is not ready"
    if state.vm_state not in rule.vm_states:
        return 409, f"Cannot '{rule.name}' instance {server_id} while it is in vm_state {state.vm_state}"
    if state.task_state is not None:
        return 409, f"Cannot '{rule.name}' instance {server_id} while it is in task_state {state.task_state}"
    if not state.launched:
        return 409, f"Instance {server_id} is in an invalid state for '{rule.name}'"
    return 202, None


@pytest.fixture
def server_in(make_server: Callable[..., Instance], store: Any) -> Callable[[State, bool], Instance]:
    def build(state: State, locked: bool) -> Instance:
        inst = make_server("matrix-vm")
        if state.on_host:
            activate(store, inst.id)
        lock = {"locked": True, "locked_by": "admin"} if locked else {}
        return set_fields(store, inst.id, vm_state=state.vm_state, task_state=state.task_state,
                          power_state=POWER.get(state.vm_state, PowerState.NOSTATE),
                          launched_at=store.get_instance(inst.id).launched_at if state.launched else None, **lock)

    return build


CASES = [(k, s) for k in RULES for s in STATES]


@pytest.mark.parametrize(("key", "state"), CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_state_rules(client, store, server_in, key, state):
    """Each (locked, caller) pair on a server of its own, one app for the four."""
    for locked in (False, True):
        for caller, headers in CALLERS.items():
            server = server_in(STATES[state], locked)
            before = store.get_instance(server.id)
            actions_before = [a.request_id for a in store.list_actions(server.id)]
            response = client.post(f"/v2.1/servers/{server.id}/action", json=RULES[key].body,
                                   headers={**headers, **mv("2.73")})
            code, message = expected(key, STATES[state], locked, caller, server.id)
            body = response.get_json(silent=True)
            case = f"{'locked' if locked else 'unlocked'}, {caller}"
            assert response.status_code == code, (case, body)
            if code == 409:
                assert body == {"conflictingRequest": {"code": 409, "message": message}}, case
            if code in (403, 409):
                after = store.get_instance(server.id)
                assert (after.vm_state, after.task_state, after.locked) == (
                    before.vm_state, before.task_state, before.locked), case
                assert [a.request_id for a in store.list_actions(server.id)] == actions_before, case


def test_state_rules__every_power_and_lock_action_is_in_the_matrix():
    from api.actions import ACTIONS
    for key in ("os-stop", "os-start", "pause", "unpause", "suspend", "resume", "lock", "unlock"):
        assert key in ACTIONS and key in RULES
