"""Host aggregates and availability zones: Nova's rules and messages (nova/compute/api.py
``AggregateAPI``, nova/availability_zones.py, nova/exception.py).

A compute host's zone is the ``availability_zone`` metadata of the aggregates it is in, or
``[DEFAULT] default_availability_zone`` when none of them has one. The store applies these
rules inside the transaction that makes the change (compute/store/aggregates.py), so two
concurrent requests cannot between them put a host in two zones.

Servers count as "on" a host when they hold a resource claim there (compute/store/claims.py):
that set can be watched in the same transaction, and it also covers a server arriving by
migration, which Nova's ``instance.host`` count would not yet see.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from compute import errors
from compute.models import Aggregate

AZ_KEY = "availability_zone"

# nova/compute/api.py AGGREGATE_ACTION_*: which InvalidAggregateAction* a rule raises.
ADD = "add"
UPDATE = "update"
UPDATE_META = "update_meta"
DELETE = "delete"
_PREFIXES = {
    ADD: "Cannot add host to aggregate",
    UPDATE: "Cannot update aggregate",
    UPDATE_META: "Cannot update metadata of aggregate",
    DELETE: "Cannot remove host from aggregate",
}
_AZ_WOULD_CHANGE = (
    "The host cannot be {verb} the aggregate as the availability zone of the host would change from "
    "'{old}' to '{new}' but the host already has {count} instance(s). Changing the AZ of an existing "
    "instance is not supported by this action. Move the instances away from this host then try again. "
    "If you need to move the instances between AZs then you can use shelve_offload and unshelve to "
    "achieve this.")


class AggregateNotFound(errors.NotFound):
    def __init__(self, aggregate_id: int | str) -> None:
        super().__init__(f"Aggregate {aggregate_id} could not be found.")


class AggregateNameExists(errors.Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Aggregate {name} already exists.")


class AggregateHostExists(errors.Conflict):
    def __init__(self, aggregate_id: int, host: str) -> None:
        super().__init__(f"Aggregate {aggregate_id} already has host {host}.")


class AggregateHostNotFound(errors.NotFound):
    def __init__(self, aggregate_id: int, host: str) -> None:
        super().__init__(f"Aggregate {aggregate_id} has no host {host}.")


class ComputeHostNotFound(errors.NotFound):
    def __init__(self, host: str) -> None:
        super().__init__(f"Compute host {host} could not be found.")


class InvalidAggregateAction(errors.Invalid):
    """Nova's InvalidAggregateAction*: 400 from update, set_metadata and delete; the add_host and
    remove_host routes answer it with 409 (nova/api/openstack/compute/aggregates.py)."""

    def __init__(self, action: str, aggregate_id: int, reason: str) -> None:
        super().__init__(f"{_PREFIXES[action]} {aggregate_id}. Reason: {reason}.")
        self.action = action


def zones_of(aggregates: Iterable[Aggregate]) -> list[str]:
    """The distinct zones of ``aggregates``, in aggregate id order."""
    found: list[str] = []
    for aggregate in sorted(aggregates, key=lambda a: a.id):
        zone = aggregate.availability_zone
        if zone and zone not in found:
            found.append(zone)
    return found


def check_zone_update(action: str, metadata: Mapping[str, str | None], aggregate: Aggregate,
                      host_aggregates: Iterable[Aggregate], hosts_have_servers: bool | None) -> None:
    """``is_safe_to_update_az``: the zone ``metadata`` would give ``aggregate`` (and its hosts).

    ``host_aggregates`` are the aggregates the hosts concerned are in (this one included or not);
    ``hosts_have_servers`` is None when the caller does not check for servers (add_host).
    """
    if AZ_KEY not in metadata:
        return
    zone = metadata[AZ_KEY]
    if not zone:
        raise InvalidAggregateAction(
            action, aggregate.id, f"Aggregate {aggregate.name} does not support empty named availability zone")
    conflicting = [a.availability_zone for a in sorted(host_aggregates, key=lambda a: a.id)
                   if a.availability_zone is not None and a.availability_zone != zone and a.id != aggregate.id]
    if conflicting:
        raise InvalidAggregateAction(action, aggregate.id,
                                     f"One or more hosts already in availability zone(s) {conflicting}")
    if hosts_have_servers and aggregate.availability_zone != zone:
        raise InvalidAggregateAction(action, aggregate.id, "One or more hosts contain instances in this zone")


def check_host_added(aggregate: Aggregate, aggregates_of_host: Iterable[Aggregate], servers: int) -> None:
    """``ensure_no_instances_need_to_move_az_when_host_added``."""
    new_zone = aggregate.availability_zone
    if not servers or not new_zone:
        return
    old = zones_of(aggregates_of_host)
    old_zone = old[0] if old else None
    if old_zone != new_zone:
        raise InvalidAggregateAction(ADD, aggregate.id, _AZ_WOULD_CHANGE.format(
            verb="added to", old=old_zone, new=new_zone, count=servers))


def check_host_removed(aggregate: Aggregate, aggregates_of_host: Iterable[Aggregate], servers: int) -> None:
    """``ensure_no_instances_need_to_move_az_when_host_removed``."""
    current_zone = aggregate.availability_zone
    if not servers or not current_zone:
        return
    remaining = zones_of(a for a in aggregates_of_host if a.id != aggregate.id)
    new_zone = remaining[0] if remaining else None
    if current_zone != new_zone:
        raise InvalidAggregateAction(DELETE, aggregate.id, _AZ_WOULD_CHANGE.format(
            verb="removed from", old=current_zone, new=new_zone, count=servers))


# ---- a create's requested zone (nova/compute/api.py parse_availability_zone, servers.py) ------------
UNPARSABLE_ZONE = "Invalid input received: Unable to parse availability_zone"
ZONE_NOT_AVAILABLE = "The requested availability zone is not available"


class HostZones(Protocol):
    """What the zone checks read from the store."""

    default_availability_zone: str

    def zones_in_use(self) -> tuple[set[str], set[str]]: ...

    def aggregates_of_host(self, host: str) -> list[Aggregate]: ...


def available_zones(store: HostZones) -> set[str]:
    """Zones with at least one enabled compute service (whether it is up does not matter), from the
    store's zone indexes rather than every host."""
    return store.zones_in_use()[0]


def zone_for_forced_host(store: HostZones, zone: str | None, host: str) -> str | None:
    """``_validate_host_availability_zone``: the zone kept for a server forced onto ``host``.

    The requested zone when the host is in it (the default zone counting for a host in no zoned
    aggregate), else none at all: the server is then not pinned to any zone.
    """
    default = store.default_availability_zone
    member_of = store.aggregates_of_host(host)
    if not member_of:
        return zone if zone == default else None
    host_zone = next((a.availability_zone for a in member_of if a.availability_zone), None)
    if zone == host_zone or (zone == default and host_zone is None):
        return zone
    return None


def parse_availability_zone(store: HostZones, value: str | None,
                            default_schedule_zone: str | None = None) -> tuple[str | None, str | None]:
    """``az``, ``az:host``, ``az:host:node`` or ``az::node`` -> (the zone the server is pinned to, forced host).

    Nodes are named after their hosts here, so a node names the host. Without a zone the
    server gets ``[DEFAULT] default_schedule_zone`` (None: it may then go anywhere). A zone
    with no enabled service is a 400, unless a host is forced.
    """
    zone, host, node = value or None, None, None
    if value and ":" in value:
        colons = value.count(":")
        if colons == 1:
            zone, host = value.split(":")
        elif colons == 2 and "::" in value:
            zone, node = value.split("::")
        elif colons == 2:
            zone, host, node = value.split(":")
        else:
            raise errors.Invalid(UNPARSABLE_ZONE)
    zone = zone or default_schedule_zone
    forced = host or node or None
    if forced:
        zone = zone_for_forced_host(store, zone, forced)
    if zone and not host and zone not in available_zones(store):
        raise errors.Invalid(ZONE_NOT_AVAILABLE)
    return zone or None, forced
