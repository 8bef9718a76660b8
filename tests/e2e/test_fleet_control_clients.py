"""``compute-actions fleet`` and ``watch`` against a running ``compute-actions dev``, with the real
``openstack`` CLI: the README's "Driving the fleet" example, run command by command as written there.

The dev server is this module's own (fault rules, a host taken down and the time scale would
change what the other e2e tests see on the shared one).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, DevServer, running_dev_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def fleet_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    # A host taken down goes down once its last report is service_down_time old (reports: 0.5 s).
    with running_dev_server(tmp_path_factory.mktemp("fleet-dev"), COMPUTE_ACTIONS_SERVICE_DOWN_TIME="2",
                            COMPUTE_ACTIONS_HEALTH__HEARTBEAT_INTERVAL_SECONDS="0.5") as server:
        yield server


def readme_example() -> list[str]:
    """The commands of the first ``sh`` block under "## Driving the fleet", one per line."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Driving the fleet\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "the README's Driving the fleet section has no sh block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def run(dev: DevServer, command: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """One README line as a shell would run it, against ``dev``: with the README's variables ("Trying
    it"), or its clouds.yaml for a command that names ``--os-cloud`` (the variables would override it)."""
    argv = shlex.split(command, comments=True)
    exe = shutil.which(argv[0], path=str(BIN)) or shutil.which(argv[0])
    assert exe, f"{argv[0]} is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_COMPUTE_API=dev.endpoint, OS_TOKEN="admin:admin", OS_CLIENT_CONFIG_FILE=str(dev.clouds_yaml),
               PYTHONPATH=str(ROOT))
    if "--os-cloud" not in argv:
        env.update(OS_AUTH_TYPE="token", OS_AUTH_URL=dev.endpoint.rsplit("/v2.1", 1)[0] + "/identity/v3",
                   OS_PROJECT_NAME="admin")
    env.pop("COLUMNS", None)
    return subprocess.run([exe, *argv[1:]], check=False, capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=ROOT)


def test_readme_example__a_pre_check_fault_on_the_first_choice_and_the_retry_watched(fleet_dev: DevServer) -> None:
    commands = readme_example()
    assert any(c.startswith("compute-actions watch ") for c in commands)
    request_id = None
    transcripts: dict[str, subprocess.CompletedProcess[str]] = {}
    for command in commands:
        if command.startswith("REQ=$("):
            continue  # the request id, which the README takes from the list with awk, is read below
        if "$REQ" in command:
            assert request_id, "the example shows an event before listing the actions"
            command = command.replace("$REQ", request_id)
        done = run(fleet_dev, command)
        transcripts[command] = done
        if command.startswith("compute-actions watch"):
            watched = done
            continue  # its exit code is checked below, with its transcript
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        if "server event list" in command:
            rows = [line for line in done.stdout.splitlines() if "live-migration" in line]
            request_id = re.search(r"req-[0-9a-f-]{36}", rows[0]).group(0)
    transcript = watched.stdout
    assert watched.returncode == 0, transcript + watched.stderr
    print(transcript)  # the README's transcript comes from here (pytest -s)
    assert re.search(r"start    conductor_(migrate_server|live_migrate_instance)", transcript), transcript
    for expected in ("Error    compute_check_can_live_migrate_destination on compute-kvm-3",
                     "Success  compute_check_can_live_migrate_destination on compute-kvm-2",
                     "Success  compute_check_can_live_migrate_source on compute-kvm-1",
                     "Success  compute_live_migration on compute-kvm-1",
                     "Success  compute_pre_live_migration on compute-kvm-2",
                     "progress live migration copy",
                     "Success  compute_post_live_migration_at_destination on compute-kvm-2"):
        assert expected in transcript, transcript
    last = transcript.rstrip().splitlines()[-1]
    assert last.startswith(f"Result: Success: live-migration {request_id} finished in ") and last.endswith(
        "server ACTIVE on compute-kvm-2"), last
    # what `openstack server event show` said: the first choice failed its check, the second took the server
    [show] = [p for c, p in transcripts.items() if "server event show" in c]
    events = json.loads(show.stdout)["events"]
    checks = [(e["host"], e["result"]) for e in sorted(events, key=lambda e: e["start_time"])
              if e["event"] == "compute_check_can_live_migrate_destination"]
    assert checks == [("compute-kvm-3", "Error"), ("compute-kvm-2", "Success")]
    failed = next(e for e in events if e["result"] == "Error")
    assert failed["details"] == "libvirt: not enough free memory for the incoming guest"
    shown = run(fleet_dev, "openstack --os-cloud compute-actions server show demo-lm -f json")
    assert json.loads(shown.stdout)["OS-EXT-SRV-ATTR:host"] == "compute-kvm-2"
    # both rules fired once and were then spent (the example lists them, then clears them)
    [listed] = [p for c, p in transcripts.items() if c.startswith("compute-actions fleet faults list")]
    spent = [line.split()[-1] for line in listed.stdout.splitlines()[1:]]
    assert spent == ["0", "0"], listed.stdout
    assert run(fleet_dev, "compute-actions fleet faults list").stdout.strip() == "no fault rules"


def test_watch__a_failing_live_migration_exits_1_and_actions_shows_it(fleet_dev: DevServer) -> None:
    created = run(fleet_dev, "openstack --os-cloud compute-actions server create --image "
                             "70a599e0-31e7-49b7-b260-868f441e862b --flavor m1.tiny --nic none "
                             "--availability-zone nova:compute-kvm-1 --wait -f value -c id doomed-lm")
    assert created.returncode == 0, created.stderr
    added = run(fleet_dev, "compute-actions fleet faults add live_migration --times 1 "
                           "--message 'libvirt: migration stream broken'")
    assert added.returncode == 0, added.stderr
    migrated = run(fleet_dev, "openstack --os-cloud compute-actions server migrate --live-migration doomed-lm")
    assert migrated.returncode == 0, migrated.stderr
    watched = run(fleet_dev, "compute-actions watch doomed-lm --timeout 120")
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert "compute_rollback_live_migration_at_destination" in watched.stdout
    assert watched.stdout.rstrip().splitlines()[-1].startswith("Result: Error: live-migration req-")
    assert "libvirt: migration stream broken" in watched.stdout.rstrip().splitlines()[-1]
    history = run(fleet_dev, "compute-actions actions doomed-lm")
    assert history.returncode == 0, history.stderr
    rows = [line.split() for line in history.stdout.splitlines()[1:]]
    assert [(r[1], r[-1]) for r in rows] == [("live-migration", "Error"), ("create", "Success")]
    run(fleet_dev, "compute-actions fleet faults clear")


def test_fleet__host_down_is_down_in_os_services_and_bad_input_is_refused(fleet_dev: DevServer) -> None:
    down = run(fleet_dev, "compute-actions fleet host down compute-xen-2")
    assert down.returncode == 0, down.stderr
    assert re.fullmatch(r"compute-xen-2 is down \(os-services state (up|down), service enabled\)", down.stdout.strip())
    try:
        def states() -> dict[str, str]:
            services = run(fleet_dev, "openstack --os-cloud compute-actions compute service list -f json")
            return {s["Host"]: s["State"] for s in json.loads(services.stdout)}
        seen = wait_for(lambda: (found := states())["compute-xen-2"] == "down" and found, 30,
                        "compute-xen-2 to be down once service_down_time has passed")
        assert seen["compute-xen-1"] == "up"
        hosts = run(fleet_dev, "compute-actions fleet hosts --json")
        assert {h["name"]: h["state"] for h in json.loads(hosts.stdout)}["compute-xen-2"] == "down"
    finally:
        assert run(fleet_dev, "compute-actions fleet host up compute-xen-2").returncode == 0
    refused = run(fleet_dev, "compute-actions fleet faults add prep_resize --effect hang")
    assert refused.returncode == 3
    assert refused.stderr.startswith("error: 400 Effect hang does not apply to prep_resize")
    member = run(fleet_dev, "compute-actions fleet hosts --token demo:demo")
    assert (member.returncode, member.stderr.strip()) == (
        3, "error: 403 Policy doesn't allow compute_actions:fleet to be performed.")
    scale = run(fleet_dev, "compute-actions fleet time-scale 0.5")
    assert scale.stdout.strip() == "time scale 0.5 (set at runtime; configured 0.2)"
    back = run(fleet_dev, "compute-actions fleet time-scale config")
    assert back.stdout.strip() == "time scale 0.2 (from [fleet] duration_scale; configured 0.2)"
