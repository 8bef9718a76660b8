"""Every Redis key of the project, and the one place that builds them.

Keys are ``<prefix><name>``; the prefix belongs to one Store (settings ``redis.key_prefix``,
a fresh one per test), so two stores on one Redis never see each other. Records are JSON
strings of the compute.models classes. An index is the set or sorted set that lists a
kind of record, for the ``list_*`` reads; the record and its index entries are always
written in the same MULTI. Nothing expires except the two locks, the idempotency records
and the worker heartbeats.

Each entry: the key after the prefix, its Redis type, what it holds, its index, its TTL,
then the store module and methods that write it. ``{id}`` is an instance uuid and ``{rid}``
an action's request id unless the entry says otherwise.

Counters
``seq`` string: the counter that orders instances and actions. Index: none. TTL: none.
    base.next_seq, accepts.accept_on_known (INCR in its script).
``seq:migration`` string: the last migration id handed out. Index: none. TTL: none.
    migrations.create_migration, accepts.accept_on_known.

Instances
``instances`` zset: instance id -> seq. The index of ``instance:{id}``. TTL: none.
    instances.create_instance, put_instance, purge_instance_record.
``instances:live`` zset: instance id -> its ``instances`` score, for the servers that are not deleted
    (every project's). The all-projects index of the server lists (page by marker: ZREVRANGEBYSCORE
    below the marker's score). TTL: none. instances.create_instance, put_instance, update_instance
    (``deleted`` flipping), purge_instance_record. Missing in a store written before it existed:
    ``rebuild_instance_indexes`` (run at start by fleet/loader.py) fills it and the next one.
``instances:status`` hash: Nova status -> how many servers not deleted have it (a status whose servers
    all left stays at 0). The metrics' ``compute_actions_servers``, read without a record. TTL: none.
    instances.create_instance, put_instance, update_instance (a status change, ``deleted`` flipping),
    purge_instance_record, each in the record's MULTI,
    accepts.accept_on_known in its script. Missing in a store written before it existed:
    ``rebuild_status_counts`` (run at start by fleet/loader.py) counts the live servers.
``project:{project}:instances`` zset: the same for one project's servers. The per-project index of
    the server lists. TTL: none. Written with ``instances:live``.
``host:{name}:instances`` zset: instance id -> its ``instances`` score, for the servers not deleted whose
    record names the host (``instance.host``). The index of an admin's server lists with ``host=``
    (``all_tenants``): paged as ``instances:live`` is. TTL: none. instances._queue_instance (create_instance,
    put_instance), update_instance (a host change or ``deleted`` flipping, in its MULTI; with ``known`` in
    SWAP_COUNTED, which takes the score from ``instances``), purge_instance_record. accepts.accept_on_known
    never moves it: an accept that changes the host falls back to update_instance.
``host:{name}:deleted_instances`` zset: the same for the deleted servers whose record names the host (what
    ``host=`` with ``deleted=true`` pages). Written with ``host:{name}:instances``. hosts.delete_host leaves
    both: the records still name the host.
``instances:by_host_built`` string: "1" once the two sets above hold every server (set by
    ``rebuild_host_instance_index`` at the first start that finds servers, run through
    rebuild_missing_indexes, which fills them once for a store written before them; until then that start
    indexes them once more, harmlessly). Index: none. TTL: none.
``instance:{id}`` string: JSON Instance. Index: ``instances``, ``instances:live``, ``project:{project}:instances``,
    ``host:{name}:instances`` or ``host:{name}:deleted_instances``. TTL: none.
    instances.create_instance, put_instance, update_instance, purge_instance_record. update_instance
    with ``known`` (the caller's copy) writes it and its ``instances:status`` move in one Lua script
    (instances.SWAP_COUNTED: only while the record is still that copy; else the WATCH path);
    accepts.accept_on_known writes it with an action's records in one script on the same condition.
``instance:{id}:claims`` set: hosts holding a claim for the instance. The per-instance index of ``claim:*``. TTL: none.
    claims.claim_resources, release_claim.
``instance:{id}:actions`` zset: request id -> seq. The per-instance index of ``action:{rid}``: a page of
    os-instance-actions is a ZREVRANGEBYSCORE below the marker's seq (actions.page_actions). TTL: none.
    actions (every action write), accepts.accept_on_known, actions.delete_action.
``instance:{id}:migrations`` zset: migration id -> id. The per-instance index of ``migration:{id}``. TTL: none.
    migrations.create_migration, accepts.accept_on_known.
``instance:{id}:backups:{type}`` zset: backup image id -> created_at epoch. The rotation index of ``image:{id}``.
    TTL: none. catalog.add_backup, delete_image.

Hosts and claims
``hosts`` set: host names. The index of ``host:{name}``. TTL: none.
    hosts.put_host, delete_host, fleet_seed.apply_fleet.
``hosts:by_service_id`` zset: host name -> its service_id. The order and marker of os-hypervisors pages
    (below 2.53 a hypervisor's id is its service id). TTL: none. hosts.put_host, delete_host,
    fleet_seed.apply_fleet; rebuilt at start from ``hosts`` when missing (hosts.rebuild_host_ids).
``hosts:by_uuid`` hash: hypervisor uuid (uuid5 of the host name) -> host name, the 2.53+ hypervisor ids.
    Index: none. TTL: none. Written with ``hosts:by_service_id``.
``hosts:by_service_uuid`` hash: service uuid (uuid5 of ``service:`` + the host name, the 2.53+ os-services
    ids) -> host name: PUT and DELETE /os-services/{id} find their host in one read. Index: none. TTL: none.
    hosts.put_host (a new host), delete_host, fleet_seed.apply_fleet; hosts.rebuild_listing_indexes.
``hosts:totals`` hash: count, vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used,
    running_vms summed over the enabled hosts (Nova's compute_node_statistics: enabled services, up or
    down): GET /os-hypervisors/statistics reads it alone. TTL: none. hosts.put_host, update_host,
    delete_host (the host's share before and after, its record and usage WATCHed), claim_resources and
    release_claim (the claim's amounts in the claim's MULTI, when the host is enabled),
    fleet_seed.apply_fleet. Missing in a store written before it existed: ``rebuild_listing_indexes``
    (run at start by fleet/loader.py through rebuild_missing_indexes) sums the records once.
``hosts:trigram:{trigram}`` set (``{trigram}`` three consecutive characters of a host name): the hosts
    whose name holds it. The hostname pattern search (os-hypervisors ``/{pattern}/search``,
    ``/{pattern}/servers``, ``?hypervisor_hostname_pattern=``) intersects the sets of the pattern's
    trigrams, then confirms each name. TTL: none. Written with ``hosts:by_service_uuid``.
``host:{name}:migrations`` set: ids of the migrations whose source or destination is the host and whose
    status was not over at their last write (a superset: a migration whose destination changed while in
    progress stays listed under the old one; readers confirm on the record). The in-progress check of
    DELETE /os-services/{id}. TTL: none. migrations.create_migration,
    accepts.accept_on_known, put_migration, update_migration,
    overwrite_migration (each write of a record, in its MULTI or swap script); hosts.delete_host deletes
    it; migrations.rebuild_host_migration_index fills it for a store written before it existed.
``host:{name}`` string: JSON Host (without its zone, which its aggregates decide). Index: ``hosts``,
    ``hosts:by_service_id``, ``placement:{zone}``. TTL: none. hosts.put_host, update_host, delete_host,
    fleet_seed.apply_fleet.
``host:{name}:usage`` hash: vcpus_used, memory_mb_used, local_gb_used, running_vms. Index: none. TTL: none.
    claims.claim_resources, release_claim (in the claim's script); hosts.delete_host.
``host:{name}:claims`` set: instance ids holding a claim on the host. The per-host index of ``claim:*``. TTL: none.
    claims.claim_resources, release_claim; hosts.delete_host.
``host:{name}:aggregates`` set: ids of the aggregates the host is in; the mirror of ``aggregate:{id}:hosts``.
    TTL: none. aggregates.add_aggregate_host, remove_aggregate_host; hosts.delete_host; fleet_seed.apply_fleet.
``host:{name}:placement`` string: the zone whose ``placement:{zone}`` set lists the host; absent while the
    host is not a candidate (disabled, taken down or forced down). The WATCH point of every write that
    moves the host's entry. TTL: none. hosts.put_host, update_host, delete_host, placement.rebuild_placement_index;
    aggregates.add_aggregate_host, remove_aggregate_host, update_aggregate, set_aggregate_metadata (when a
    zone changes); fleet_seed.apply_fleet.
``placement:{zone}`` zset (``{zone}`` a zone name, the default one included): candidate host -> minus its free
    RAM (memory_mb x ram_allocation_ratio - memory_mb_used), so ZRANGE gives the weigher's order, ties by
    name. Only enabled hosts that are up and not forced down (one whose reports merely aged past
    service_down_time stays, and the search's ComputeFilter rejects it when read). The scheduler reads a
    window of it at a time (compute/scheduler.py), never the whole set. TTL: none.
    claims.claim_resources, release_claim (the new score in the claim's script), and every writer of
    ``host:{name}:placement``.
``placement_zones`` set: the zones that have had a ``placement:{zone}`` set (an unrestricted search reads
    them all). Index: none. TTL: none. Written with ``placement:{zone}``.
``hosts:unschedulable`` set: hosts that are not candidates (disabled or down), for the explanation of a
    search (a few named, the rest counted). Index: none. TTL: none. Written with ``host:{name}:placement``.
    A store written before these four keys existed has no placement index: ``Store.rebuild_placement_index``
    (run by fleet/loader.py on every start, O(fleet) once) rebuilds them from ``hosts``, ``host:{name}``,
    ``host:{name}:usage`` and the aggregates.
``claim:{host}:{id}`` hash: vcpus, ram, disk the claim took. Index: ``host:{name}:claims``, ``instance:{id}:claims``.
    TTL: none. claims.claim_resources, release_claim.

Aggregates (``{id}`` an aggregate id; fleet_seed.apply_fleet also writes each key of this part when the
fleet file adds an aggregate or a membership)
``seq:aggregate`` string: the last aggregate id handed out. Index: none. TTL: none.
    aggregates.create_aggregate.
``aggregates`` zset: aggregate id -> id. The index of ``aggregate:{id}``. TTL: none.
    aggregates.create_aggregate, delete_aggregate.
``aggregate:{id}`` string: JSON Aggregate without its hosts. Index: ``aggregates``, ``aggregate_names``. TTL: none.
    aggregates.create_aggregate, update_aggregate, set_aggregate_metadata, delete_aggregate.
``aggregate:{id}:hosts`` zset: host name -> epoch it was added. The aggregate's members, mirrored by
    ``host:{name}:aggregates``. TTL: none. aggregates.add_aggregate_host, remove_aggregate_host,
    delete_aggregate; hosts.delete_host.
``aggregate_names`` hash: aggregate name -> id (names are unique). Index: none. TTL: none.
    aggregates.create_aggregate, update_aggregate, delete_aggregate.

Flavors and images
``flavors`` set: flavor ids. The index of ``flavor:{id}``. TTL: none.
    catalog.put_flavor.
``flavor:{id}`` string (``{id}`` a flavor id): JSON Flavor. Index: ``flavors``. TTL: none.
    catalog.put_flavor, fleet_seed.apply_fleet (the file's flavors; one it no longer lists goes).
``images`` zset: image id -> created_at epoch. The index of ``image:{id}``; read backwards by position
    (ZREVRANGE: created_at then id, descending, Glance's default order) a chunk at a time until a page is
    full (catalog.page_images). TTL: none. catalog.put_image, delete_image, fleet_seed.apply_fleet (adds the
    file's, never removes).
``images:public`` zset: image id -> created_at epoch, the images whose visibility was public at a write
    (a superset: readers confirm on the record). With the next two, what a project's image list reads
    (catalog.page_images ``listable_by``: their union, a chunk at a time) instead of every image. TTL: none.
    catalog.put_image, update_image (the old state's entries out, the new one's in, in the record's compare-and-set script),
    delete_image, fleet_seed.apply_fleet; catalog.rebuild_image_listing fills the three once for a store
    written before them (run at start through rebuild_missing_indexes).
``project:{project}:images`` zset: the same for the images the project owns (any visibility). Written with
    ``images:public``.
``project:{project}:shared_images`` zset: the same for the images that name the project as a member (any
    member status). Written with ``images:public``.
``images:listing_built`` string: "1" once the three sets above hold every image (set by
    catalog.rebuild_image_listing at the first start that finds images; until then that start indexes
    them once more, harmlessly). Index: none. TTL: none.
``images:listing:{token}`` zset (``{token}`` a random hex): the union of the caller's three sets, made,
    read and deleted in one MULTI by catalog.page_images. TTL: none (never outlives its MULTI).
``image:{id}`` string (``{id}`` an image id): JSON Image. Index: ``images``, backups also
    ``instance:{id}:backups:{type}``. TTL: none. catalog.put_image, update_image, delete_image.
``lock:rotation:{id}:{type}`` string: the request id rotating that (server, backup_type). Index: none.
    TTL: the engine's lease_ttl (PX). catalog.acquire_rotation_lock, release_rotation_lock.

Migrations
``migrations`` zset: migration id -> id. The index of ``migration:{id}`` (ids in creation order: the
    os-migrations pages for admins, migrations.page_migrations). TTL: none. migrations.create_migration,
    accepts.accept_on_known.
``project:{project}:migrations`` zset: migration id -> id, the project's migrations (os-migrations for a
    caller who is not an admin pages this one). TTL: none. migrations.create_migration,
    accepts.accept_on_known. Missing in a store
    written before it existed: ``rebuild_migration_indexes`` (run at start by fleet/loader.py) fills it.
``migration:{id}`` string (``{id}`` a migration id): JSON Migration. Index: ``migrations``,
    ``instance:{id}:migrations``, ``project:{project}:migrations``, ``migration_uuid:{uuid}``. TTL: none.
    migrations.create_migration, accepts.accept_on_known, put_migration, update_migration, overwrite_migration.
``migration_uuid:{uuid}`` string: the id of the migration with that uuid. The uuid lookup of ``migration:{id}``.
    TTL: none. migrations.create_migration, accepts.accept_on_known.

Actions, events, flow runs and leases
``action:{rid}`` string: JSON InstanceAction. Index: ``instance:{id}:actions``. TTL: none.
    actions.record_action, delete_action, instances (with a state change), accepts.accept_on_known,
    runs.commit_run.
``action:{rid}:events`` hash: event key -> JSON ActionEvent. Index: none. TTL: none.
    runs.commit_run, actions.put_event (lock/unlock, with the action), actions.delete_action.
``run:{rid}`` string: JSON FlowRun. Index: ``runs:due``. TTL: none.
    actions (with its action), accepts.accept_on_known, runs.commit_run, claim_stale_run.
``runs:due`` zset: request id -> epoch after which the reaper may take the run over. The index of ``run:{rid}``.
    TTL: none. actions, accepts.accept_on_known, runs.commit_run, claim_stale_run.
``lease:{rid}`` string: the worker running the action. Index: none. TTL: the engine's lease_ttl (PX).
    runs.acquire_lease, release_lease, commit_run (renews).

Quotas and usage
``quota_class:{class}`` hash: resource -> limit set for the quota class (only ``default`` changes the defaults).
    Index: none. TTL: none. quotas.update_class_quotas.
``quota:{project}`` hash: resource -> the project's limit overrides. Index: none. TTL: none.
    quotas.update_quotas, delete_quotas.
``quota:{project}:user:{user}`` hash: resource -> a user's limit overrides in the project.
    Index: ``quota:{project}:users``. TTL: none. quotas.update_quotas, delete_quotas.
``quota:{project}:users`` set: the users with overrides in the project. The index of
    ``quota:{project}:user:{user}``. TTL: none. quotas.update_quotas, delete_quotas.
``usage:{project}`` hash: instances, cores, ram held by the project's servers that are not deleted.
    Index: none. TTL: none. instances.create_instance (checked against the limits under the same
    WATCH, written in the record's MULTI), put_instance, update_instance (when ``deleted`` flips),
    purge_instance_record.
``usage:{project}:user:{user}`` hash: the same for one user's servers in the project. Index: none.
    TTL: none. Written with ``usage:{project}``.

The dev identity directory (compute/directory.py)
``identities`` set: "user<TAB>project" for every user and project a record has named (either part empty
    when the record names only the other; the empty pair marks a rebuilt set): what /identity/v3 lists, read
    in one SMEMBERS instead of every server, action, migration and image. A name stays once its records go.
    Index: none. TTL: none. The MULTI of each record that names them: instances._queue_instance (a new
    server), actions._queue_action, migrations.create_migration,
    accepts.accept_on_known, catalog.put_image. Missing in a store
    written before it existed: ``rebuild_identities`` (run at start by fleet/loader.py) reads them once.

Idempotency keys (api/idempotency.py)
``idempotency:{digest}`` string: JSON IdempotencyRecord, the reservation and then the first answer
    (``{digest}`` = sha256 of project, user and the client's key). Index: none. TTL: [idempotency]
    in_flight_ttl_seconds while in flight, window_seconds once answered.
    idempotency.reserve_idempotency_key, finish_idempotency_key, release_idempotency_key.

The simulated fleet (fleet/)
``fleet:seeded`` string: "1" once config/fleet.yaml was loaded. Index: none. TTL: none.
    fleet_seed.apply_fleet (in the MULTI that writes the fleet), fleet_state.mark_fleet_seeded.
``fleet:digest`` string: sha256 of the fleet file the store holds, written in the same MULTI as the
    fleet itself (so present only once every host, aggregate, flavor and image of it is). A start with
    another file applies the difference or refuses it. Index: none. TTL: none. fleet_seed.apply_fleet.
``fleet:durations`` hash: simulated operation -> seconds. Index: none. TTL: none.
    fleet_state.set_fleet_durations, fleet_seed.apply_fleet (replaced by the file's).
``fleet:faults`` hash: fault rule id -> JSON rule. Index: none. TTL: none.
    fleet_state.add_fault_rule, clear_fault_rules.
``fleet:fault_budget`` hash: fault rule id -> times the rule may still fire. Index: none. TTL: none.
    fleet_state.add_fault_rule, spend_fault_budget, clear_fault_rules.
``fleet:op:{op_id}`` string: JSON simulated hypervisor operation. Index: none (found by SCAN). TTL: none.
    fleet_state.start_fleet_op, update_fleet_op.
``fleet:clock_offset`` string: seconds (float) the simulated clock runs ahead. Index: none. TTL: none.
    fleet_state.advance_fleet_clock.
``fleet:time_scale`` string: the [fleet] duration_scale an operator set at runtime (float; absent: each
    process's own setting). Index: none. TTL: none. fleet_state.set_fleet_time_scale (the fleet control API).
``fleet:reported_at`` string: ISO time of the last report of the fleet's nova-compute services (every
    process that simulates them reports at each of its heartbeats; Nova's report_state). Index: none.
    TTL: none. heartbeats.record_heartbeat.

Worker heartbeats (workers/heartbeat.py)
``workers`` set: Celery node names of workers that have beaten. The index of ``worker:{name}``; each beat
    drops the names whose records expired. TTL: none. heartbeats.record_heartbeat, remove_heartbeat.
``worker:{name}`` string (``{name}`` a Celery node name): JSON WorkerHeartbeat (name, pid, hostname, time).
    Index: ``workers``. TTL: [health] heartbeat_ttl_seconds (PX), renewed by every beat.
    heartbeats.record_heartbeat, remove_heartbeat.
"""
from __future__ import annotations

_GLOB_SPECIALS = str.maketrans({c: "\\" + c for c in "\\*?[]"})


class Keys:
    """Builds the keys of one Store; every method returns a full key, prefix included."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def pattern(self, glob: str = "*") -> str:
        """A SCAN pattern for ``glob`` under this prefix (glob characters in the prefix are escaped)."""
        return self.prefix.translate(_GLOB_SPECIALS) + glob

    # ---- counters -----------------------------------------------------------------------
    def sequence(self) -> str:
        return self._k("seq")

    def migration_sequence(self) -> str:
        return self._k("seq", "migration")

    # ---- instances ------------------------------------------------------------------------
    def instance_index(self) -> str:
        return self._k("instances")

    def instance(self, instance_id: str) -> str:
        return self._k("instance", instance_id)

    def live_instances(self) -> str:
        return self._k("instances", "live")

    def instance_status_counts(self) -> str:
        return self._k("instances", "status")

    def project_instances(self, project_id: str) -> str:
        return self._k("project", project_id, "instances")

    def instance_claims(self, instance_id: str) -> str:
        return self._k("instance", instance_id, "claims")

    def instance_actions(self, instance_id: str) -> str:
        return self._k("instance", instance_id, "actions")

    def instance_migrations(self, instance_id: str) -> str:
        return self._k("instance", instance_id, "migrations")

    def instance_backups(self, instance_id: str, backup_type: str) -> str:
        return self._k("instance", instance_id, "backups", backup_type)

    # ---- hosts and claims ---------------------------------------------------------------------
    def host_index(self) -> str:
        return self._k("hosts")

    def host(self, name: str) -> str:
        return self._k("host", name)

    def hosts_by_service_id(self) -> str:
        return self._k("hosts", "by_service_id")

    def hosts_by_uuid(self) -> str:
        return self._k("hosts", "by_uuid")

    def hosts_by_service_uuid(self) -> str:
        return self._k("hosts", "by_service_uuid")

    def host_totals(self) -> str:
        return self._k("hosts", "totals")

    def host_trigram(self, trigram: str) -> str:
        return self._k("hosts", "trigram", trigram)

    def host_migrations(self, name: str) -> str:
        return self._k("host", name, "migrations")

    def host_instances(self, name: str, deleted: bool = False) -> str:
        return self._k("host", name, "deleted_instances" if deleted else "instances")

    def host_instances_built(self) -> str:
        return self._k("instances", "by_host_built")

    def host_usage(self, name: str) -> str:
        return self._k("host", name, "usage")

    def host_claims(self, name: str) -> str:
        return self._k("host", name, "claims")

    def claim(self, host: str, instance_id: str) -> str:
        return self._k("claim", host, instance_id)

    def host_aggregates(self, name: str) -> str:
        return self._k("host", name, "aggregates")

    def host_placement(self, name: str) -> str:
        return self._k("host", name, "placement")

    def placement(self, zone: str) -> str:
        return self._k("placement", zone)

    def placement_zones(self) -> str:
        return self._k("placement_zones")

    def unschedulable_hosts(self) -> str:
        return self._k("hosts", "unschedulable")

    # ---- aggregates ---------------------------------------------------------------------------
    def aggregate_sequence(self) -> str:
        return self._k("seq", "aggregate")

    def aggregate_index(self) -> str:
        return self._k("aggregates")

    def aggregate(self, aggregate_id: int | str) -> str:
        return self._k("aggregate", str(aggregate_id))

    def aggregate_hosts(self, aggregate_id: int | str) -> str:
        return self._k("aggregate", str(aggregate_id), "hosts")

    def aggregate_names(self) -> str:
        return self._k("aggregate_names")

    # ---- flavors and images -------------------------------------------------------------------
    def flavor_index(self) -> str:
        return self._k("flavors")

    def flavor(self, flavor_id: str) -> str:
        return self._k("flavor", flavor_id)

    def image_index(self) -> str:
        return self._k("images")

    def image(self, image_id: str) -> str:
        return self._k("image", image_id)

    def public_images(self) -> str:
        return self._k("images", "public")

    def project_images(self, project_id: str) -> str:
        return self._k("project", project_id, "images")

    def shared_images(self, project_id: str) -> str:
        return self._k("project", project_id, "shared_images")

    def image_listing_built(self) -> str:
        return self._k("images", "listing_built")

    def image_listing_scratch(self, token: str) -> str:
        return self._k("images", "listing", token)

    def rotation_lock(self, instance_id: str, backup_type: str) -> str:
        return self._k("lock", "rotation", instance_id, backup_type)

    # ---- migrations ---------------------------------------------------------------------------
    def migration_index(self) -> str:
        return self._k("migrations")

    def project_migrations(self, project_id: str) -> str:
        return self._k("project", project_id, "migrations")

    def migration(self, migration_id: int | str) -> str:
        return self._k("migration", str(migration_id))

    def migration_by_uuid(self, migration_uuid: str) -> str:
        return self._k("migration_uuid", migration_uuid)

    # ---- actions, events, runs and leases -----------------------------------------------------
    def action(self, request_id: str) -> str:
        return self._k("action", request_id)

    def action_events(self, request_id: str) -> str:
        return self._k("action", request_id, "events")

    def run(self, request_id: str) -> str:
        return self._k("run", request_id)

    def runs_due(self) -> str:
        return self._k("runs", "due")

    def lease(self, request_id: str) -> str:
        return self._k("lease", request_id)

    # ---- quotas and usage ---------------------------------------------------------------------
    def quota_class(self, quota_class: str) -> str:
        return self._k("quota_class", quota_class)

    def project_quotas(self, project_id: str) -> str:
        return self._k("quota", project_id)

    def user_quotas(self, project_id: str, user_id: str) -> str:
        return self._k("quota", project_id, "user", user_id)

    def quota_users(self, project_id: str) -> str:
        return self._k("quota", project_id, "users")

    def project_usage(self, project_id: str) -> str:
        return self._k("usage", project_id)

    def user_usage(self, project_id: str, user_id: str) -> str:
        return self._k("usage", project_id, "user", user_id)

    def identities(self) -> str:
        return self._k("identities")

    # ---- idempotency keys ---------------------------------------------------------------------
    def idempotency(self, digest: str) -> str:
        return self._k("idempotency", digest)

    # ---- the simulated fleet ------------------------------------------------------------------
    def fleet_seeded(self) -> str:
        return self._k("fleet", "seeded")

    def fleet_digest(self) -> str:
        return self._k("fleet", "digest")

    def fleet_durations(self) -> str:
        return self._k("fleet", "durations")

    def fleet_faults(self) -> str:
        return self._k("fleet", "faults")

    def fleet_fault_budget(self) -> str:
        return self._k("fleet", "fault_budget")

    def fleet_op(self, op_id: str) -> str:
        return self._k("fleet", "op", op_id)

    def fleet_ops_pattern(self) -> str:
        return self.pattern("fleet:op:*")

    def fleet_clock_offset(self) -> str:
        return self._k("fleet", "clock_offset")

    def fleet_time_scale(self) -> str:
        return self._k("fleet", "time_scale")

    def fleet_reported_at(self) -> str:
        return self._k("fleet", "reported_at")

    # ---- worker heartbeats --------------------------------------------------------------------
    def worker_index(self) -> str:
        return self._k("workers")

    def worker(self, name: str) -> str:
        return self._k("worker", name)
