"""Crash injection: a patched call takes the "worker" down, the way a process dies mid-step.

``SimulatedCrash`` is a BaseException, so it escapes the runner's error handling: the step
is left uncommitted (its cursor not advanced, its lease still held), as after a SIGKILL.
``owner`` is whatever holds the callable: a class (every instance), an object, or a module.
"""
from __future__ import annotations

from typing import Any

import pytest


class SimulatedCrash(BaseException):
    """Escapes the runner's error handling, like a process dying mid-step."""


def crash_once_after(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """The first call of ``owner.name`` does its work, then the worker dies; later calls just run."""
    original = getattr(owner, name)
    fired: list[bool] = []

    def then_die(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if fired:
            return result
        fired.append(True)
        raise SimulatedCrash(f"killed right after {name}")

    monkeypatch.setattr(owner, name, then_die)


def crash_once_before(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """The first call of ``owner.name`` kills the worker before doing anything; later calls just run."""
    original = getattr(owner, name)
    fired: list[bool] = []

    def die_first(*args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(True)
            raise SimulatedCrash(f"killed inside {name}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, die_first)


def crash_every_time(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """Every call of ``owner.name`` kills the worker before doing anything (think OOM)."""
    def die(*_: Any, **__: Any) -> Any:
        raise SimulatedCrash(f"{name} kills the worker")

    monkeypatch.setattr(owner, name, die)
