"""``compute-actions watch``, ``actions`` and ``fleet`` against the API on the in-memory engine.

The commands' HTTP goes through the Flask test client, and ``watch``'s sleep delivers the next
queued message, so a whole action is followed step by step without a worker or a wall clock.
The same commands against a running ``compute-actions dev`` are in tests/e2e/test_fleet_control_clients.py.
"""
from __future__ import annotations

import argparse
import io
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from compute.store import Store
from fleet.simulator import SimulatedFleet
from tests.api.conftest import ADMIN, HOST, mv
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine
from workers import fleet_cli, watch
from workers.api_client import Client
from workers.watch_progress import Progress

ENDPOINT = "http://compute.test/v2.1"


@pytest.fixture
def http(engine: Engine, settings: Any) -> Iterator[FlaskClient]:
    yield create_app(settings, engine.service).test_client()


def client_for(http: FlaskClient, token: str = "admin:admin") -> Client:
    def send(method: str, url: str, headers: dict[str, str], data: bytes | None) -> tuple[int, bytes]:
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        response = http.open(path, method=method, headers=headers, data=data)
        return response.status_code, response.get_data()

    return Client(ENDPOINT, token, transport=send)


def boot(http: FlaskClient, engine: Engine, name: str = "vm", flavor: str = "1") -> str:
    created = http.post("/v2.1/servers", headers=ADMIN, json={"server": {
        "name": name, "imageRef": IMAGE_ID, "flavorRef": flavor, "networks": "none",
        "availability_zone": f"nova:{HOST}"}})
    assert created.status_code == 202
    engine.drain()
    return created.get_json()["server"]["id"]


def live_migrate(http: FlaskClient, server_id: str) -> str:
    moved = http.post(f"/v2.1/servers/{server_id}/action", headers={**ADMIN, **mv("2.34")},
                      json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    assert moved.status_code == 202
    return moved.headers["x-openstack-request-id"]


def run_watch(http: FlaskClient, engine: Engine, server: str, **options: Any) -> tuple[int, str]:
    out = io.StringIO()

    def next_delivery(_: float) -> None:
        engine.deliver_one()

    code = watch.Watch(client_for(http), watch.WatchOptions(server, interval=0, **options), watch.PlainOutput(out),
                       sleep=next_delivery).run()
    return code, out.getvalue()


def test_watch__follows_a_live_migration_retried_after_a_pre_check_fault(http: FlaskClient, engine: Engine,
                                                                         fleet: SimulatedFleet) -> None:
    server_id = boot(http, engine, "watched")
    fleet.set_durations({"live_migration_per_gb": 30.0})  # a copy long enough for several polls
    fleet.add_fault("check_can_live_migrate_destination", host="compute-kvm-3", times=1, message="no room")
    request_id = live_migrate(http, server_id)
    code, transcript = run_watch(http, engine, "watched")
    assert code == watch.EXIT_SUCCESS, transcript
    assert f"Watching live-migration {request_id} of server watched ({server_id})" in transcript
    for line in ("start    conductor_live_migrate_instance",
                 "Error    compute_check_can_live_migrate_destination on compute-kvm-3",
                 "Success  compute_check_can_live_migrate_destination on compute-kvm-2",
                 "Success  compute_check_can_live_migrate_source on compute-kvm-1",
                 "Success  compute_live_migration on compute-kvm-1",
                 "Success  compute_pre_live_migration on compute-kvm-2",
                 "Success  compute_post_live_migration_at_destination on compute-kvm-2"):
        assert line in transcript, transcript
    assert ": no room" in transcript
    progress = [line for line in transcript.splitlines() if "progress live migration copy" in line]
    assert len(progress) >= 3 and "memory" in progress[-1] and "of 512.0 MiB" in progress[-1], transcript
    assert transcript.rstrip().splitlines()[-1].startswith(
        f"Result: Success: live-migration {request_id} finished in ")
    assert transcript.rstrip().endswith("server ACTIVE on compute-kvm-2")


def test_watch__a_failed_copy_exits_1_with_the_reason(http: FlaskClient, engine: Engine,
                                                     fleet: SimulatedFleet) -> None:
    server_id = boot(http, engine)
    fleet.add_fault("live_migration", times=1, message="migration stream broken")
    request_id = live_migrate(http, server_id)
    code, transcript = run_watch(http, engine, server_id)
    assert code == watch.EXIT_ERROR, transcript
    assert "compute_rollback_live_migration_at_destination" in transcript
    assert transcript.rstrip().splitlines()[-1].startswith(
        f"Result: Error: live-migration {request_id} failed: migration stream broken")


def test_watch__no_destination_left_exits_1_at_the_conductor_event(http: FlaskClient, engine: Engine,
                                                                  fleet: SimulatedFleet) -> None:
    server_id = boot(http, engine)
    fleet.add_fault("check_can_live_migrate_destination", message="refused everywhere")
    live_migrate(http, server_id)
    code, transcript = run_watch(http, engine, server_id)
    assert code == watch.EXIT_ERROR, transcript
    assert "Result: Error: live-migration" in transcript
    assert "failed at conductor_live_migrate_instance" in transcript


def test_watch__a_hung_copy_times_out_with_exit_2(http: FlaskClient, engine: Engine, fleet: SimulatedFleet) -> None:
    server_id = boot(http, engine)
    fleet.add_fault("live_migration", mode="hang")
    live_migrate(http, server_id)
    code, transcript = run_watch(http, engine, server_id, timeout=0.3)
    assert code == watch.EXIT_TIMEOUT, transcript
    assert "Result: timed out after 0.3s" in transcript


def test_watch__cold_migration_shows_the_disk_copy_and_a_retried_prep_resize_is_no_failure(
        http: FlaskClient, engine: Engine, fleet: SimulatedFleet) -> None:
    server_id = boot(http, engine, flavor="2")  # 20 GiB of disk
    fleet.set_durations({"cold_migration_per_gb": 1.0})
    fleet.add_fault("prep_resize", host="compute-kvm-3", times=1)
    moved = http.post(f"/v2.1/servers/{server_id}/action", headers=ADMIN, json={"migrate": None})
    assert moved.status_code == 202
    code, transcript = run_watch(http, engine, server_id)
    assert code == watch.EXIT_SUCCESS, transcript
    assert "Error    compute_prep_resize on compute-kvm-3" in transcript
    assert any("progress cold migration disk copy" in line and "of 20.0 GiB" in line
               for line in transcript.splitlines()), transcript
    assert "Result: Success: migrate" in transcript and "server VERIFY_RESIZE" in transcript


def test_watch__an_action_with_no_events_ends_after_the_grace(http: FlaskClient, engine: Engine) -> None:
    server_id = boot(http, engine)
    reset = http.post(f"/v2.1/servers/{server_id}/action", headers=ADMIN, json={"os-resetState": {"state": "active"}})
    assert reset.status_code == 202
    engine.drain()
    out = io.StringIO()
    code = watch.Watch(client_for(http), watch.WatchOptions(server_id, interval=0, no_event_grace=0),
                       watch.PlainOutput(out), sleep=lambda _: None).run()
    assert code == watch.EXIT_SUCCESS, out.getvalue()
    assert "Result: Success: resetState" in out.getvalue()


def test_watch__unknown_server_and_non_admin_calls(http: FlaskClient, engine: Engine) -> None:
    with pytest.raises(watch.ApiError, match="No server with a name or ID of 'nope' exists."):
        watch.Watch(client_for(http), watch.WatchOptions("nope"), watch.PlainOutput(io.StringIO())).run()
    boot(http, engine, "mine")
    with pytest.raises(watch.ApiError, match="No server with a name or ID"):  # another project's server
        watch.Watch(client_for(http, "bob:other"), watch.WatchOptions("mine"), watch.PlainOutput(io.StringIO())).run()


def test_watch__the_rich_display_renders_to_a_pipe(http: FlaskClient, engine: Engine) -> None:
    server_id = boot(http, engine)
    live_migrate(http, server_id)
    out = io.StringIO()
    code = watch.Watch(client_for(http), watch.WatchOptions(server_id, interval=0), watch.RichOutput(out),
                       sleep=lambda _: engine.deliver_one()).run()
    assert code == watch.EXIT_SUCCESS
    assert "compute_post_live_migration_at_destination" in out.getvalue() and "Result: Success" in out.getvalue()


def test_actions__the_history_as_plain_lines(http: FlaskClient, engine: Engine, fleet: SimulatedFleet,
                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    server_id = boot(http, engine, "hist")
    fleet.add_fault("live_migration", times=1)
    failed = live_migrate(http, server_id)
    engine.drain()
    worked = live_migrate(http, server_id)
    engine.drain()
    monkeypatch.setattr(watch, "client_from", lambda args: client_for(http))
    args = argparse.Namespace(server="hist", limit=None, json=False, output="plain")
    assert watch.actions_command(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Request", "ID", "Action", "Start", "Time", "User", "Message", "Events", "Result",
                                "Failed", "at"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1], r[-1]) for r in rows] == [(worked, "live-migration", "Success"),
                                                   (failed, "live-migration", "Error"),
                                                   (rows[2][0], "create", "Success")]


def test_fleet_cli__commands_talk_to_the_extension(http: FlaskClient, engine: Engine, store: Store,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(fleet_cli, "client_from", lambda args: client_for(http))
    base = {"json": False, "output": "plain"}

    def run(func: Any, **args: Any) -> str:
        assert func(argparse.Namespace(**{**base, **args})) == 0
        return capsys.readouterr().out

    assert "compute-kvm-3  up" in run(fleet_cli.hosts)
    assert ["check_can_live_migrate_destination", "check", "fail"] in [
        line.split() for line in run(fleet_cli.operations).splitlines()]
    added = run(fleet_cli.add_fault, operation="check_can_live_migrate_destination", host="compute-kvm-2",
                effect="fail", factor=None, times=1, message="refused")
    assert added.startswith("added fault rule check_can_live_migrate_destination:compute-kvm-2:fail")
    run(fleet_cli.add_fault, operation="live_migration", host=None, effect="slow", factor=20.0, times=None,
        message=None)
    listed = run(fleet_cli.list_faults)
    assert "slow x20" in listed and "fail: refused" in listed and "always" in listed
    assert run(fleet_cli.host_down, name="compute-kvm-2").strip() == ("compute-kvm-2 is down (os-services state down, "
                                                                 "service enabled)")
    assert store.get_host("compute-kvm-2").up is False
    run(fleet_cli.host_up, name="compute-kvm-2")
    assert "time scale 5 (set at runtime; configured 1)" in run(fleet_cli.time_scale, scale="5")
    assert "from [fleet] duration_scale" in run(fleet_cli.time_scale, scale="config")
    run(fleet_cli.clear_faults, rule_id="live_migration:*:slow")
    assert list(store.fault_rules()) == ["check_can_live_migrate_destination:compute-kvm-2:fail"]
    run(fleet_cli.clear_faults, rule_id=None)
    assert run(fleet_cli.list_faults).strip() == "no fault rules"


def test_watch__a_rich_copy_that_succeeded_ends_full_and_above_the_result() -> None:
    out = io.StringIO()
    rich = watch.RichOutput(out)
    rich.progress("live migration copy", Progress(0.8, processed=410 << 20, total=512 << 20, what="memory"))
    rich.phases_done(True)
    rich.result("Result: Success: live-migration req-1 finished in 20.1s")
    lines = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue()).splitlines()  # without the terminal codes
    bar = [i for i, line in enumerate(lines) if "live migration copy" in line][-1]
    assert "100%" in lines[bar] and "memory 512.0 MiB of 512.0 MiB" in lines[bar], out.getvalue()
    shown = [line for line in lines if line.strip()]
    assert shown[-1].startswith("Result: Success") and "live migration copy" in shown[-2], shown
