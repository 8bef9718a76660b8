"""The Redis store: every record, every compare-and-set, every claim.

Records are JSON strings under one key prefix (compute/store/keys.py lists every key).
Anything that must not race (task_state and migration status changes, host claims, a
step's commit, the lease) is a WATCH/MULTI transaction or a small Lua script (a step's commit,
a lease's release, a compare-and-set on a record the caller holds: one round trip each; fakeredis
runs them through lupa), so the same code runs on real Redis and on fakeredis. :class:`Store` is the one facade; each part lives in its module.
"""
from __future__ import annotations

from compute.store.accepts import AcceptRecords
from compute.store.aggregates import AggregateRecords
from compute.store.base import MarkerNotFound, iso_to_epoch
from compute.store.catalog import CatalogRecords
from compute.store.claims import capacity_shortfall
from compute.store.fleet_seed import FleetChangeRefused, FleetFile, FleetSeedRecords
from compute.store.fleet_state import FleetState
from compute.store.heartbeats import HeartbeatRecords
from compute.store.hosts import HostRecords
from compute.store.idempotency import IdempotencyRecords
from compute.store.instances import InstanceRecords
from compute.store.migrations import MigrationRecords
from compute.store.placement import ClaimBasis
from compute.store.runs import RunRecords

__all__ = ["ClaimBasis", "FleetChangeRefused", "FleetFile", "MarkerNotFound", "Store", "capacity_shortfall", "iso_to_epoch"]


class Store(AcceptRecords, InstanceRecords, HostRecords, CatalogRecords, MigrationRecords, RunRecords, FleetState,
            IdempotencyRecords, AggregateRecords, HeartbeatRecords, FleetSeedRecords):
    """``Store(client, prefix)``: the client must decode responses (``decode_responses=True``)."""
