"""Every action name recorded in os-instance-actions (nova/compute/instance_actions.py).

These strings are Nova's, so tools that read actions see what they see on Nova. Each one
also names its flow (``Flow.name``) and its modules: ``api/views/<module>.py``,
``compute/actions/<module>.py``, ``tasks/<module>.py`` and the tests named after it.
"""
from __future__ import annotations

CREATE = "create"
DELETE = "delete"
RESET_STATE = "resetState"
CHANGE_PASSWORD = "changePassword"
INJECT_NETWORK_INFO = "injectNetworkInfo"
RESET_NETWORK = "resetNetwork"
CREATE_BACKUP = "createBackup"
LIVE_MIGRATION = "live-migration"
LIVE_MIGRATION_FORCE_COMPLETE = "live_migration_force_complete"
LIVE_MIGRATION_CANCEL = "live_migration_cancel"
MIGRATE = "migrate"
CONFIRM_RESIZE = "confirmResize"
REVERT_RESIZE = "revertResize"
STOP = "stop"
START = "start"
PAUSE = "pause"
UNPAUSE = "unpause"
SUSPEND = "suspend"
RESUME = "resume"
LOCK = "lock"
UNLOCK = "unlock"
# Not Nova's: Nova cannot cancel a cold migration.
COLD_MIGRATION_CANCEL = "cold_migration_cancel"
