from __future__ import annotations

from compute.actions.change_password import change_password
from compute.actions.create_server import create_server
from compute.actions.delete_server import delete_server
from compute.actions.inject_network_info import inject_network_info
from compute.actions.reset_network import reset_network
from compute.states import TaskState, VmState
from tests.support.contexts import admin_ctx, demo_ctx
from tests.support.engine import Engine


def events_of(engine: Engine, request_id: str) -> list[tuple[str, str | None]]:
    return [(e.event, e.result) for e in engine.store.list_events(request_id)]


def test_create__builds_active_on_a_claimed_host(engine: Engine) -> None:
    ctx = demo_ctx()
    inst = create_server(engine.service, ctx, name="vm1", flavor_id="2", image_id=None)
    assert engine.store.get_instance(inst.id).task_state == TaskState.SCHEDULING
    engine.drain()
    inst = engine.store.get_instance(inst.id)
    assert (inst.vm_state, inst.task_state, inst.power_state) == (VmState.ACTIVE, None, 1)
    assert inst.host and inst.launched_at
    usage = engine.store.get_usage(inst.host)
    assert (usage.memory_mb_used, usage.running_vms) == (2048, 1)
    action = engine.store.get_action(ctx.request_id)
    assert action.action == "create" and action.finish_time and action.message is None
    # Nova's one build event, on the compute host; the conductor records none when scheduling works.
    assert events_of(engine, ctx.request_id) == [("compute__do_build_and_run_instance", "Success")]
    assert [e.host for e in engine.store.list_events(ctx.request_id)] == [inst.host]


def test_create__unknown_forced_host_ends_in_error_without_host(engine: Engine) -> None:
    ctx = admin_ctx()
    inst = create_server(engine.service, ctx, name="vm", flavor_id="1", image_id=None,
                                        availability_zone="nova:no-such-host")
    engine.drain()
    inst = engine.store.get_instance(inst.id)
    assert (inst.vm_state, inst.task_state, inst.host) == (VmState.ERROR, None, None)
    assert "no-such-host could not be found" in inst.fault["message"]
    action = engine.store.get_action(ctx.request_id)
    assert action.message == "Error" and action.finish_time
    [event] = engine.store.list_events(ctx.request_id)
    assert (event.event, event.host) == ("conductor_schedule_and_build_instances", engine.settings.host)
    assert event.result == "Error" and "no-such-host could not be found" in event.details
    assert "Traceback" in event.traceback


def test_create__spawn_failure_releases_the_claim(engine: Engine) -> None:
    engine.fleet.add_fault("spawn", mode="fail", message="disk image corrupt")
    inst = engine.boot()
    assert inst.vm_state == VmState.ERROR and inst.host is None
    assert inst.fault["message"] == "disk image corrupt"
    for host in engine.store.list_hosts():
        assert engine.store.get_usage(host.name).running_vms == 0
        assert engine.store.claims_on_host(host.name) == set()


def test_delete__releases_claims_and_hides_the_server(engine: Engine) -> None:
    inst = engine.boot()
    ctx = demo_ctx()
    delete_server(engine.service, ctx, inst)
    engine.drain()
    gone = engine.store.get_instance(inst.id)
    assert gone.deleted and gone.vm_state == VmState.DELETED
    assert engine.store.get_usage(inst.host).running_vms == 0
    assert engine.store.get_action(ctx.request_id).action == "delete"


def test_change_password__sets_and_clears_the_task_state(engine: Engine) -> None:
    inst = engine.boot()
    ctx = demo_ctx()
    change_password(engine.service, ctx, inst, "s3cret")
    assert engine.store.get_instance(inst.id).task_state == TaskState.UPDATING_PASSWORD
    engine.drain()
    done = engine.store.get_instance(inst.id)
    assert done.task_state is None and done.password_set_at
    assert events_of(engine, ctx.request_id) == [("compute_set_admin_password", "Success")]


def test_change_password__driver_failure_restores_the_server(engine: Engine) -> None:
    inst = engine.boot()
    engine.fleet.add_fault("set_admin_password", mode="fail", message="guest agent not running")
    ctx = demo_ctx()
    change_password(engine.service, ctx, inst, "s3cret")
    engine.drain()
    after = engine.store.get_instance(inst.id)
    assert (after.vm_state, after.task_state) == (VmState.ACTIVE, None)
    [event] = engine.store.list_events(ctx.request_id)
    assert (event.result, event.details) == ("Error", "guest agent not running")


def test_reset_network__fails_clearly_on_a_kvm_host(engine: Engine) -> None:
    inst = engine.boot(availability_zone="nova:compute-kvm-1", ctx=admin_ctx())
    ctx = admin_ctx()
    reset_network(engine.service, ctx, inst)
    engine.drain()
    [event] = engine.store.list_events(ctx.request_id)
    assert event.result == "Error"
    assert event.details == "reset_network is not supported by the QEMU driver on host compute-kvm-1"
    assert engine.store.get_instance(inst.id).vm_state == VmState.ACTIVE


def test_reset_network__succeeds_on_a_xen_host(engine: Engine) -> None:
    inst = engine.boot(availability_zone="nova:compute-xen-1", ctx=admin_ctx())
    ctx = admin_ctx()
    reset_network(engine.service, ctx, inst)
    engine.drain()
    assert events_of(engine, ctx.request_id) == [("compute_reset_network", "Success")]
    assert engine.store.get_action(ctx.request_id).message is None


def test_inject_network_info__records_an_action_with_an_event(engine: Engine) -> None:
    inst = engine.boot()
    ctx = admin_ctx()
    inject_network_info(engine.service, ctx, inst)
    engine.drain()
    assert events_of(engine, ctx.request_id) == [("compute_inject_network_info", "Success")]
    assert engine.store.get_instance(inst.id).network_info_injected_at


def test_delete_accepted_during_build__the_server_ends_deleted_without_claims(engine: Engine) -> None:
    inst = create_server(engine.service, demo_ctx(), name="vm", flavor_id="2", image_id=None)
    delete_server(engine.service, demo_ctx(), engine.store.get_instance(inst.id))
    create_message, delete_message = engine.queue.pending[0], engine.queue.pending[1]
    engine.queue.pending[:] = [delete_message]
    engine.drain()
    engine.queue.pending[:] = [create_message]
    engine.drain()
    after = engine.store.get_instance(inst.id)
    assert (after.deleted, after.vm_state, after.host) == (True, VmState.DELETED, None)
    assert all(engine.store.get_usage(h.name).running_vms == 0 for h in engine.store.list_hosts())
