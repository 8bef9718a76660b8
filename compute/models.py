"""Records kept in the store. Timestamps are naive UTC ISO 8601 with microseconds, as Nova shows them."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from compute.states import PowerState, VmState

_HOST_NAMESPACE = uuid.UUID("6a1b3c5e-9d2f-4b8a-8c7e-1f0d2e3c4b5a")


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


class Host(BaseModel):
    """A hypervisor and its nova-compute service, as the simulated fleet describes it."""

    name: str
    hypervisor_type: str = "QEMU"
    hypervisor_version: int = 8002000
    cpu_model: str = "Haswell"
    vcpus: int = 16
    memory_mb: int = 65536
    local_gb: int = 1000
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    shared_storage: str | None = None
    # The zone of the aggregates the host is in (else [DEFAULT] default_availability_zone): the
    # store fills it in on every read (compute/store/aggregates.py); it is never stored.
    availability_zone: str = "nova"
    host_ip: str = "192.0.2.1"
    enabled: bool = True
    up: bool = True
    disabled_reason: str | None = None
    forced_down: bool = False
    service_id: int = 0
    updated_at: str = Field(default_factory=utcnow)
    # Nova's ``last_seen_up``: the last report of its nova-compute. Stored when the fleet control
    # takes the host down (it stops reporting); for a host that is up the store fills in the
    # fleet's latest report on every read (compute/store/hosts.py).
    last_seen_up: str | None = None
    # Nova's DB servicegroup ``is_up``: the last report is at most ``service_down_time`` old. The
    # store decides it on every read; it is never stored.
    reporting: bool = True
    # When the simulated hypervisor booted: its uptime (os-hypervisors) counts from here.
    started_at: str = Field(default_factory=utcnow)

    @property
    def uuid(self) -> str:
        return str(uuid.uuid5(_HOST_NAMESPACE, self.name))

    @property
    def service_uuid(self) -> str:
        return str(uuid.uuid5(_HOST_NAMESPACE, "service:" + self.name))

    @property
    def node(self) -> str:
        return self.name

    @property
    def service_is_up(self) -> bool:
        """Nova's servicegroup ``service_is_up``: reporting and not forced down (os-services ``state``)."""
        return self.reporting and not self.forced_down

    @property
    def in_service(self) -> bool:
        """It can take work: its service is up, and its nova-compute runs (the fleet control has not
        stopped it). A stopped one still shows ``up`` until its reports age; nothing is sent to it."""
        return self.up and self.service_is_up


class HostUsage(BaseModel):
    vcpus_used: int = 0
    memory_mb_used: int = 0
    local_gb_used: int = 0
    running_vms: int = 0


class Flavor(BaseModel):
    id: str
    name: str
    vcpus: int
    ram: int
    disk: int
    ephemeral: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None
    extra_specs: dict[str, str] = Field(default_factory=dict)

    @property
    def total_disk_gb(self) -> int:
        return self.disk + self.ephemeral + (self.swap + 1023) // 1024


class Image(BaseModel):
    id: str = Field(default_factory=new_uuid)
    name: str
    status: str = "active"  # Glance statuses: queued, saving, active, killed, deleted
    owner: str | None = None
    visibility: str = "public"
    min_disk: int = 0
    min_ram: int = 0
    size: int = 0
    progress: int = 100
    properties: dict[str, str] = Field(default_factory=dict)
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)
    # Glance v2 fields (api/views/glance_images.py); members: project id -> pending/accepted/rejected
    disk_format: str | None = "qcow2"
    container_format: str | None = "bare"
    checksum: str | None = None
    protected: bool = False
    os_hidden: bool = False
    tags: list[str] = Field(default_factory=list)
    members: dict[str, str] = Field(default_factory=dict)


class Instance(BaseModel):
    id: str = Field(default_factory=new_uuid)
    name: str
    project_id: str
    user_id: str
    flavor: Flavor
    image_id: str | None = None
    host: str | None = None
    node: str | None = None
    availability_zone: str | None = None
    requested_host: str | None = None
    vm_state: str = VmState.BUILDING
    task_state: str | None = None
    power_state: int = PowerState.NOSTATE
    locked: bool = False
    # Who holds the lock (Nova's ``locked_by``): "owner" (the server's project) or "admin" (another's).
    locked_by: str | None = None
    locked_reason: str | None = None
    volume_backed: bool = False
    progress: int = 0
    metadata: dict[str, str] = Field(default_factory=dict)
    fault: dict[str, Any] | None = None
    launched_at: str | None = None
    terminated_at: str | None = None
    deleted: bool = False
    deleted_at: str | None = None
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)
    password_set_at: str | None = None
    network_info_injected_at: str | None = None
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    # Nova's ``hostname`` (asked for from 2.90, else made from the name), and the create request
    # the server came from: its ``r-...`` reservation id and the server's index in it.
    hostname: str | None = None
    reservation_id: str | None = None
    launch_index: int = 0


class Aggregate(BaseModel):
    """A host aggregate (nova/objects/aggregate.py); ``id`` is assigned by the store.

    ``hosts`` is kept in its own sorted set and filled in on read, in the order hosts were added.
    """

    id: int = 0
    uuid: str = Field(default_factory=new_uuid)
    name: str
    metadata: dict[str, str] = Field(default_factory=dict)
    hosts: list[str] = Field(default_factory=list)
    created_at: str = Field(default_factory=utcnow)
    updated_at: str | None = None

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get("availability_zone")


class InstanceAction(BaseModel):
    request_id: str
    action: str
    instance_uuid: str
    user_id: str | None
    project_id: str | None
    start_time: str = Field(default_factory=utcnow)
    finish_time: str | None = None
    message: str | None = None
    updated_at: str = Field(default_factory=utcnow)
    seq: int = 0


class ActionEvent(BaseModel):
    key: str
    event: str
    start_time: str = Field(default_factory=utcnow)
    finish_time: str | None = None
    result: str | None = None
    traceback: str | None = None
    host: str | None = None
    details: str | None = None


class Migration(BaseModel):
    """A move of a server between hosts (nova/objects/migration.py); ``id`` is assigned by the store."""

    id: int = 0
    uuid: str = Field(default_factory=new_uuid)
    instance_uuid: str
    migration_type: str  # live-migration | migration | resize | evacuation
    status: str
    source_compute: str | None = None
    source_node: str | None = None
    dest_compute: str | None = None
    dest_node: str | None = None
    dest_host: str | None = None
    old_instance_type_id: str | None = None
    new_instance_type_id: str | None = None
    user_id: str | None = None
    project_id: str | None = None
    request_id: str | None = None
    hidden: bool = False
    memory_total_bytes: int | None = None
    memory_processed_bytes: int | None = None
    memory_remaining_bytes: int | None = None
    disk_total_bytes: int | None = None
    disk_processed_bytes: int | None = None
    disk_remaining_bytes: int | None = None
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)
    _loaded_status: str = PrivateAttr(default="")

    def model_post_init(self, context: Any, /) -> None:
        self._loaded_status = self.status

    @property
    def loaded_status(self) -> str:
        """The status this record had when it was read: the store checks the move from it to ``status``."""
        return self._loaded_status


class FlowRun(BaseModel):
    """The engine's private record of one action: where its flow is and who runs it."""

    request_id: str
    flow: str
    # The flow's version when the run first ran (stamped by the runner); None until then.
    flow_version: int | None = None
    instance_uuid: str
    params: dict[str, Any] = Field(default_factory=dict)
    ctx: dict[str, Any] = Field(default_factory=dict)
    cursor: int = 0
    phase: str = "forward"  # forward | revert
    status: str = "queued"  # queued | running | waiting | done | error
    wake: int = 0
    deliveries: int = 0
    reaps: int = 0
    # Reaps of a run that was inside a step when its worker stopped; only these count toward max_reaps.
    lost_in_step: int = 0
    # A revert step that kept killing its worker; the runner skips it (and records that) instead.
    skip_revert_of: int | None = None
    abort_reason: str | None = None
    error: str | None = None
    owner: str | None = None
    created_at: str = Field(default_factory=utcnow)
    heartbeat_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error")


class QuotaSnapshot(BaseModel):
    """What the store holds for one (project, user) quota decision, read under one WATCH.

    Limits are only the overrides that were set (PUT os-quota-sets / os-quota-class-sets);
    compute/quotas.py fills in the defaults. Usage is what the project's (user's) servers
    that are not deleted hold: instances, cores, ram.
    """

    class_limits: dict[str, int] = Field(default_factory=dict)
    project_limits: dict[str, int] = Field(default_factory=dict)
    user_limits: dict[str, int] = Field(default_factory=dict)
    # Every user override in the project, by resource: sum of hard limits (Nova's "remains").
    user_limit_sums: dict[str, int] = Field(default_factory=dict)
    project_usage: dict[str, int] = Field(default_factory=dict)
    user_usage: dict[str, int] = Field(default_factory=dict)


class IdempotencyRecord(BaseModel):
    """The first answer to a request sent with an ``Idempotency-Key`` (api/idempotency.py)."""

    token: str = Field(default_factory=new_uuid)  # the reservation: only its holder may finish it
    fingerprint: str
    request_id: str
    state: str = "in_flight"  # in_flight | done
    status: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""
    created_at: str = Field(default_factory=utcnow)
