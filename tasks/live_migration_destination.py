"""The live migration's destination search (nova/conductor/tasks/live_migrate.py ``_find_destination``).

Source up, server running or paused; then destinations are tried one at a time until one
passes its checks. A forced host is the only candidate (Nova 5a: its own checks, one claim,
one try); otherwise the scheduler filters and weighs, and the best host is claimed
atomically. A host failing a check loses its claim, joins the attempted hosts (which the
scheduler then skips) and the next is tried, up to ``[conductor] migrate_max_retries``.

Each attempt runs ``check_can_live_migrate_destination`` then ``..._source``, each under its
own event naming the host checked. The conductor event's details tell an admin every
candidate and why it was not taken (the filter, or the check that failed).
"""
from __future__ import annotations

from pydantic import Field

from compute import errors, scheduler, telemetry
from compute.migration_checks import (
    block_migration_for,
    destination_filters,
    disk_problem,
    forced_destination_problem,
    shares_storage,
)
from compute.models import Host, Instance
from compute.scheduler import explain, with_explanation
from compute.states import PowerState
from tasks.destination_search import Attempt, DestinationSearchValues, Rejected
from tasks.moves import (
    ClaimingSearch,
    host_record,
    migration_of,
    refuse_if_being_deleted,
)
from tasks.step import HOST, FlowContext, StepFailed

CONDUCTOR_EVENT = "conductor_live_migrate_instance"
CONDUCTOR_EVENT_BEFORE_REPLY = "conductor_migrate_server"
CHECK_DESTINATION = "compute_check_can_live_migrate_destination"
CHECK_SOURCE = "compute_check_can_live_migrate_source"
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
POWER_STATE_NAMES = {0: "pending", 1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}


class LiveDestinationSearchValues(DestinationSearchValues):
    attempted: dict[str, str] = Field(default_factory=dict)  # hosts whose checks failed: the scheduler skips them
    rejections: dict[str, str] = Field(default_factory=dict)  # every host not taken, and why
    forced_problem: str | None = None  # why the forced host failed its checks: the migration's failure
    block_migration: bool = False  # as the source check decided it for the destination taken


class FindDestination(ClaimingSearch):
    event = CONDUCTOR_EVENT

    def before_search(self, fc: FlowContext) -> None:
        inst = refuse_if_being_deleted(fc)
        source = self.source(fc)
        if not source.in_service:
            raise StepFailed(f"Compute service of {source.name} is unavailable at this time.")
        if inst.power_state not in (PowerState.RUNNING, PowerState.PAUSED):
            raise StepFailed(f"Instance {inst.id} in power_state {POWER_STATE_NAMES.get(inst.power_state)}. "
                             "Cannot live migrate while the instance is in this state.")
        super().before_search(fc)

    @staticmethod
    def source(fc: FlowContext) -> Host:
        return host_record(fc, migration_of(fc).source_compute)

    def max_attempts(self, fc: FlowContext) -> int | None:
        """One try and ``migrate_max_retries`` retries (-1: no limit); a forced host has one try anyway."""
        limit = fc.settings.conductor.migrate_max_retries
        return None if fc.params.get("force") or limit == -1 else limit + 1

    def exhausted(self, fc: FlowContext, attempts: int) -> Exception:
        inst = refuse_if_being_deleted(fc)
        return StepFailed(with_explanation(
            f"Exceeded maximum number of retries. Exceeded max scheduling retries {attempts} for "
            f"instance {inst.id} during live migration", LiveDestinationSearchValues.of(fc).rejections))

    def next_candidate(self, fc: FlowContext) -> str:
        inst, source = refuse_if_being_deleted(fc), self.source(fc)
        if fc.params.get("force"):
            return self.claim_forced(fc, inst, source)
        values = LiveDestinationSearchValues.of(fc)
        selection = scheduler.select_hosts(fc.store, inst, inst.flavor, requested_host=fc.params.get("host"),
                                           extra_filters=destination_filters(source, values.attempted))
        telemetry.count_rejections(selection.rejections)
        try:
            chosen = scheduler.claim_first_fit(fc.store, inst.id, inst.flavor, selection)
        except errors.NoValidHost:
            raise StepFailed(with_explanation(NO_VALID_HOST, selection.rejections)) from None
        finally:
            values.rejections = selection.rejections
        fc.remember(HOST, chosen.name, chosen)  # as the scheduler read it: the checks and the record use it
        return chosen.name

    def claim_forced(self, fc: FlowContext, inst: Instance, source: Host) -> str:
        forced_problem = LiveDestinationSearchValues.of(fc).forced_problem
        if forced_problem:
            raise StepFailed(forced_problem)
        dest = host_record(fc, fc.params.get("host"))
        problem = forced_destination_problem(source, dest, inst, fc.store.get_usage(dest.name))
        if problem:
            raise StepFailed(problem)
        try:
            fc.store.claim_resources(dest.name, inst.id, inst.flavor)
        except errors.InsufficientResources:
            raise StepFailed(f"Migration pre-check error: Unable to move instance {inst.id} to host "
                             f"{dest.name}. There is not enough capacity on the host for the instance.") from None
        return dest.name

    def try_candidate(self, fc: FlowContext, attempt: Attempt) -> None:
        """check_can_live_migrate_destination, then _source, which also decides block migration."""
        inst, source, dest = fc.instance(), self.source(fc), host_record(fc, attempt.host)
        requested = fc.params.get("block_migration")
        guess = requested if requested is not None else not shares_storage(source, dest, inst)
        attempt.check(attempt.open(CHECK_DESTINATION, dest.name), CHECK_DESTINATION,
                      lambda: fc.driver.check_can_live_migrate_destination(dest.name, inst, guess))

        def source_checks() -> None:
            block = block_migration_for(source, dest, inst, requested)
            over_commit = fc.params.get("disk_over_commit")
            if block and over_commit is not None:
                too_small = disk_problem(dest, fc.store.get_usage(dest.name), inst, over_commit)
                if too_small:
                    raise errors.Invalid(too_small)
            fc.driver.check_can_live_migrate_source(source.name, dest.name, inst, block)
            LiveDestinationSearchValues.of(fc).block_migration = block

        attempt.check(attempt.open(CHECK_SOURCE, source.name), CHECK_SOURCE, source_checks)

    def rejected(self, fc: FlowContext, host: str, rejection: Rejected) -> None:
        """A forced host was the only candidate: its problem is the migration's, in the check's words."""
        values = LiveDestinationSearchValues.of(fc)
        values.attempted[host] = values.rejections[host] = rejection.message
        if fc.params.get("force"):
            values.forced_problem = rejection.problem

    def accepted(self, fc: FlowContext, host: str) -> None:
        conductor = fc.step_event()
        if conductor is not None:
            others = {h: why for h, why in LiveDestinationSearchValues.of(fc).rejections.items() if h != host}
            conductor.details = explain(others, chosen=host)
            fc.record_events(conductor)


class FindDestinationBeforeReply(FindDestination):
    event = CONDUCTOR_EVENT_BEFORE_REPLY
