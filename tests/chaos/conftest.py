"""The chaos tier runs on the integration tier's fixtures: one namespace (store key prefix and
Celery queue) per test on the real Redis, the API side in this process, and real ``celery
worker`` processes, each in its own process group. The report hook attaches every worker's
log (the killed ones too) to a failing test's report."""
from tests.integration.conftest import (
    broker_kind,
    namespace,
    pytest_runtest_makereport,
    real_redis,
    runtime,
    start_worker,
)

__all__ = ["broker_kind", "namespace", "pytest_runtest_makereport", "real_redis", "runtime", "start_worker"]
