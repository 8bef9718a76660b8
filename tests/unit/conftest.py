"""The unit tier's ``engine`` fixture: the in-memory engine of tests.support.engine over fakeredis."""
from __future__ import annotations

import pytest

from compute.settings import Settings
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tests.support.engine import Engine, build_engine


@pytest.fixture
def engine(store: Store, fleet: SimulatedFleet, settings: Settings) -> Engine:
    return build_engine(store, fleet, settings)
