"""The maintenance workflow of tests/e2e/test_maintenance_workflow.py on the production shape.

The same `openstack` and `nova` commands, against `compute-actions api` (gunicorn, several
processes) on the real Redis and two real `celery worker` processes, instead of the one-process
`compute-actions dev`: disable a service with a reason, `nova host-evacuate-live`, every server
ACTIVE elsewhere with a completed migration and the host's running_vms 0, enable, and new servers
land there again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DevServer
from tests.e2e.test_maintenance_workflow import drain_a_host_and_bring_it_back
from tests.integration.conftest import StartWorker
from tests.integration.quota_fixtures import ApiProcess, api  # noqa: F401 (the fixture)
from workers.cli import clouds_yaml

pytestmark = [pytest.mark.redis, pytest.mark.integration]


def test_drain_a_host_for_maintenance_on_the_production_shape(api: ApiProcess, start_worker: StartWorker,  # noqa: F811
                                                               runtime: Any, tmp_path: Path) -> None:
    start_worker("maint-a")
    start_worker("maint-b")
    endpoint = f"http://127.0.0.1:{api.port}/v2.1"
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(clouds_yaml(endpoint))
    drain_a_host_and_bring_it_back(DevServer(endpoint=endpoint, log=api.log_path, clouds_yaml=clouds))
