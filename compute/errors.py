"""Domain exceptions. The API maps each to one HTTP code in api/errors.py."""
from __future__ import annotations


class ComputeError(Exception):
    """Base: ``message`` is safe to show to the caller."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class NotFound(ComputeError):
    pass


class InstanceNotFound(NotFound):
    def __init__(self, instance_id: str) -> None:
        super().__init__(f"Instance {instance_id} could not be found.")


class Invalid(ComputeError):
    """The request is well formed but cannot be honoured (400)."""


class Conflict(ComputeError):
    """The server's state does not allow this now (409)."""


class InstanceInvalidState(Conflict):
    """Worded as Nova's API words it (common.py ``raise_http_conflict_for_instance_invalid_state``):
    a state of None (launched_at never set, an idle task_state) is not named."""

    def __init__(self, action: str, instance_id: str, attr: str, state: object) -> None:
        if state is None:
            super().__init__(f"Instance {instance_id} is in an invalid state for '{action}'")
        else:
            super().__init__(f"Cannot '{action}' instance {instance_id} while it is in {attr} {state}")


class InstanceIsLocked(Conflict):
    def __init__(self, instance_id: str) -> None:
        super().__init__(f"Instance {instance_id} is locked")


class InstanceNotReady(Conflict):
    pass


class OverQuota(ComputeError):
    """A quota would be exceeded: 403, as Nova's servers and createBackup controllers answer OverQuota."""


class InvalidStateTransition(ComputeError):
    """A flow tried a task_state change outside the transition table: a bug, not input."""


class NoValidHost(ComputeError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"No valid host was found. {reason}".strip())


class InsufficientResources(ComputeError):
    pass


class QueueUnavailable(ComputeError):
    """The broker refused the message; the API answers 503 after undoing its writes."""


class DriverError(ComputeError):
    """A hypervisor operation failed."""


class NotSupportedByDriver(DriverError):
    pass


class LeaseLost(Exception):
    """Another worker now owns the action; this one must stop without writing."""
