"""Every flow the engine can run, by the name the service layer stores on the run.

Flows are found by importing every module of the tasks package, so a new action's flow
is one new module.
"""
from __future__ import annotations

import importlib
import pkgutil

import tasks
from tasks.step import Flow


def all_flows() -> dict[str, Flow]:
    for info in pkgutil.iter_modules(tasks.__path__):
        importlib.import_module(f"tasks.{info.name}")
    flows: dict[str, Flow] = {}
    pending = list(Flow.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "name" in vars(cls):
            if cls.name in flows:
                raise ValueError(f"two flows are named {cls.name!r}")
            flows[cls.name] = cls()
    return flows
