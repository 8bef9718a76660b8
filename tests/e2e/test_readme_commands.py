"""Every command in README.md's fenced shell blocks, run as it is written.

A block is run unless the line before its fence is one of these markers:

- ``<!-- set-up command: ... -->``: one of the two set-up commands. CI runs them (``.ci/run``),
  so here each must be in ``.ci/run`` verbatim.
- ``<!-- settings: ... -->``: the variables of "Trying it". Only ``export`` lines of the names
  in SETTINGS; the test runs them itself before every block, with its own dev server's
  address in place of ``127.0.0.1:8774``.
- ``<!-- processes: ... -->``: processes that run until stopped ("Running the production
  processes by hand"). Each line is started as written, in a network and mount namespace of
  the test's own (its own loopback, so the ports are free; a tmpfs on /var/lib), and the test
  waits until every one is healthy, then stops them.
- ``<!-- not run by tests: REASON -->``: left out; EXCLUDED lists exactly which, and why.

The other blocks run in README order, each as one bash script from the checkout, against one
``compute-actions dev`` of this test's (a free port; state carries over from block to block, as
for a reader in one shell). A command's failure fails the test with its output.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, DevServer, running_dev_server

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
DEFAULT_BASE = "http://127.0.0.1:8774"
SETTINGS = {"PATH", "OS_COMPUTE_API", "OS_AUTH_TYPE", "OS_AUTH_URL", "OS_TOKEN", "OS_PROJECT_NAME"}
EXCLUDED = {
    ("Identity: Keystone", "needs Docker (the keystone and api services of docker-compose.yml)"),
    ("Benchmarks", "benchmarks, minutes each"),
}
MARKER = re.compile(r"<!--\s*(set-up command|settings|processes|not run by tests):\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
# What some commands' output must show, beyond their exit status: (a part of the command, a pattern).
EXPECTED_OUTPUT = [
    ("compute-actions watch $ID", r"Result: Success: create req-\S+ finished in .*server ACTIVE on compute-"),
    ("os-resetState", r"HTTP/1\.1 202"),
    ("$ID/os-instance-actions", r'"action":\s*"resetState"'),
    ("nova host-evacuate-live", r"\| True "),
    ("compute-actions watch demo-lm", r"Result: Success: live-migration req-\S+ finished in .*server ACTIVE on compute-kvm-2"),
    ("server event show demo-lm", r"libvirt: not enough free memory for the incoming guest"),
    ("compute-actions fleet faults clear", r"removed every fault rule"),
    # openstackclient prints the image as it found it right after the request, before its wait,
    # so the table's status may still be queued or saving; exit 0 is the proof that the wait saw
    # it active (an image in error makes the command fail).
    ("server backup create --wait", r"\| name\s+\| b1\s"),
    ("image show b1 -c status", r"(?m)^active$"),
]
PROCESS_READY_TIMEOUT = 120.0
COMMAND_TIMEOUT = 300.0


@dataclass
class Block:
    section: str
    line: int
    kind: str  # run, set-up command, settings, processes, not run by tests
    reason: str
    commands: list[str] = field(default_factory=list)


def commands_of(lines: list[str]) -> list[str]:
    """Logical lines: backslash continuations joined, blank and comment-only lines dropped."""
    found, current = [], ""
    for raw in lines:
        current += raw
        if current.endswith("\\"):
            current += "\n"  # bash joins the lines, as a reader's shell does
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            found.append(current)
        current = ""
    assert not current, f"a continuation runs off the end of a block: {current!r}"
    return found


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    section, previous, lines = "", "", README.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        opened = FENCE.match(line)
        if not opened:
            if line.strip():
                previous = line
            i += 1
            continue
        indent, language = opened.groups()
        body, i = [], i + 1
        while not (FENCE.match(lines[i]) and lines[i].strip() == "```"):
            body.append(lines[i].removeprefix(indent))
            i += 1
        i += 1
        if language in ("sh", "bash", "shell", "console"):
            assert language == "sh", f"README.md:{i}: shell blocks are ```sh"
            marked = MARKER.search(previous)
            kind, reason = (marked.group(1), marked.group(2)) if marked else ("run", "")
            blocks.append(Block(section, i, kind, reason, commands_of(body)))
        else:
            assert not MARKER.search(previous), f"README.md:{i}: a marker before a block that is not sh"
        previous = ""
    return blocks


def settings_script(blocks: list[Block], base: str) -> str:
    [settings] = [b for b in blocks if b.kind == "settings"]
    names = set()
    for command in settings.commands:
        words = shlex.split(command)
        assert words[0] == "export" and all("=" in w for w in words[1:]), command
        names |= {w.split("=", 1)[0] for w in words[1:]}
    assert names == SETTINGS, names
    script = "\n".join(settings.commands)
    assert DEFAULT_BASE in script
    return script.replace(DEFAULT_BASE, base)


def numbered(commands: list[str]) -> str:
    """The commands as one bash script that marks where each one's output starts and how it ended."""
    parts = []
    for n, command in enumerate(commands):
        parts += [f"printf '\\n@@command {n}\\n'", command,
                  f"status=$?; printf '\\n@@status {n} %s\\n' $status; [ $status -eq 0 ] || exit $status"]
    return "\n".join(parts) + "\n"


def split_outputs(text: str) -> dict[int, tuple[int | None, str]]:
    found: dict[int, tuple[int | None, str]] = {}
    chunks = re.split(r"\n@@command (\d+)\n", "\n" + text)
    for number, chunk in zip(chunks[1::2], chunks[2::2], strict=True):
        ended = re.search(r"\n@@status \d+ (\d+)\n", chunk)
        found[int(number)] = (int(ended.group(1)) if ended else None, chunk[:ended.start()] if ended else chunk)
    return found


@pytest.fixture(scope="module")
def readme_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("readme-dev")) as server:
        yield server


def test_blocks_are_marked_as_listed() -> None:
    blocks = readme_blocks()
    assert {(b.section, b.reason) for b in blocks if b.kind == "not run by tests"} == EXCLUDED
    setup = [b for b in blocks if b.kind == "set-up command"]
    assert [b.section for b in setup] == ["Set-up (a fresh machine with Python 3.11+)"] * 2
    assert [len(b.commands) for b in setup] == [1, 1], "the README has exactly two set-up commands"
    ci = CI_RUN.read_text()
    for block in setup:
        assert block.commands[0] in ci, f"{block.commands[0]!r} is not in .ci/run verbatim"
    assert [b.section for b in blocks if b.kind == "settings"] == ["Trying it"]
    assert [b.section for b in blocks if b.kind == "processes"] == ["Running the production processes by hand"]
    assert sum(b.kind == "run" for b in blocks) >= 3


def run_block(block: Block, prelude: str, log: list[str], checked: set[str]) -> None:
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", prelude + "\n" + numbered(block.commands)], cwd=ROOT, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith(("OS_", "COMPUTE_ACTIONS_")) and k != "COLUMNS"})
    outputs = split_outputs(done.stdout)
    for n, command in enumerate(block.commands):
        status, output = outputs.get(n, (None, ""))
        first = next((line.strip() for line in output.splitlines() if line.strip()), "")
        log.append(f"[{block.section}] {'not reached' if status is None else f'exit {status}'}: "
                   f"{command.splitlines()[0][:100]} -> {first[:100]}")
        assert status == 0, (f"README.md:{block.line} ({block.section}): {command!r} "
                             f"{'was not reached' if status is None else f'exited {status}'}\n"
                             f"{output[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
        for part, pattern in EXPECTED_OUTPUT:
            if part in command:
                assert re.search(pattern, output), f"{command!r}: no {pattern!r} in\n{output[-3000:]}"
                checked.add(part)
    log.append(f"[{block.section}] block of {len(block.commands)} took {time.monotonic() - started:.1f} s")


DRIVER = textwrap.dedent("""\
    import json, os, signal, subprocess, sys, time
    commands, root, logs = json.loads(open(sys.argv[1]).read()), sys.argv[2], sys.argv[3]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/var/lib"], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTE_ACTIONS_")}
    procs = [subprocess.Popen(["bash", "-c", c], cwd=root, env=env, start_new_session=True,
                              stdout=open(f"{logs}/process-{n}.log", "wb"), stderr=subprocess.STDOUT)
             for n, c in enumerate(commands)]
    health = [os.path.join(root, ".venv/bin/compute-actions"), "health"]
    checks = {"api": health + ["--url", "http://127.0.0.1:8774/readyz"],
              "worker1": health + ["--worker", "worker1@%h"], "worker2": health + ["--worker", "worker2@%h"],
              "flower": health + ["--url", "http://admin:secret@127.0.0.1:5555/"],
              "aof": ["test", "-d", "/var/lib/compute-actions/appendonlydir"]}
    deadline, healthy = time.monotonic() + float(sys.argv[4]), set()
    try:
        while time.monotonic() < deadline and len(healthy) < len(checks):
            for name, check in checks.items():
                if name not in healthy and subprocess.run(check, cwd=root, env=env, capture_output=True).returncode == 0:
                    healthy.add(name)
                    print(f"healthy {name} after {time.monotonic() - deadline + float(sys.argv[4]):.1f} s", flush=True)
            dead = [n for n, p in enumerate(procs) if p.poll() is not None]
            if dead:
                print(f"exited early: {dead}", flush=True)
                break
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    missing = sorted(set(checks) - healthy)
    print("missing: " + ",".join(missing) if missing else "all healthy", flush=True)
    sys.exit(1 if missing else 0)
""")


def run_processes(block: Block, workdir: Path, log: list[str]) -> None:
    driver, commands = workdir / "processes.py", workdir / "processes.json"
    driver.write_text(DRIVER)
    commands.write_text(json.dumps(block.commands))
    started = time.monotonic()
    done = subprocess.run(["unshare", "--net", "--mount", "--map-root-user", sys.executable, str(driver),
                           str(commands), str(ROOT), str(workdir), str(PROCESS_READY_TIMEOUT)],
                          capture_output=True, text=True, timeout=PROCESS_READY_TIMEOUT + 90, check=False)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                     for p in sorted(workdir.glob("process-*.log")))
    for line in done.stdout.splitlines():
        log.append(f"[{block.section}] {line}")
    log.append(f"[{block.section}] {len(block.commands)} processes, {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{logs}"


def test_every_readme_command_runs_as_written(readme_dev: DevServer, tmp_path: Path) -> None:
    blocks = readme_blocks()
    base = readme_dev.endpoint.rsplit("/v2.1", 1)[0]
    prelude = "set -o pipefail\n" + settings_script(blocks, base)
    log: list[str] = []
    [processes] = [b for b in blocks if b.kind == "processes"]
    failure: list[BaseException] = []

    def in_background() -> None:
        try:
            run_processes(processes, tmp_path, log)
        except (AssertionError, OSError, ValueError, subprocess.SubprocessError) as exc:  # raised below, after the blocks
            failure.append(exc)

    side = threading.Thread(target=in_background)
    side.start()
    checked: set[str] = set()
    try:
        for block in blocks:
            if block.kind == "run":
                run_block(block, prelude, log, checked)
    finally:
        side.join(PROCESS_READY_TIMEOUT + 120)
        print("\n".join(log))
    assert not side.is_alive()
    assert checked == {part for part, _ in EXPECTED_OUTPUT}, "a checked command is gone from the README"
    if failure:
        raise failure[0]
