"""The Dockerfiles and docker-compose.yml, read as Docker would (no Docker engine runs here).

Each image runs as an unprivileged user it creates and has a HEALTHCHECK; every compose service
has a healthcheck, and those that run our CLI run a ``compute-actions health`` command the CLI
accepts. README.md's "Running the production processes by hand" is the runnable equivalent
(tests/e2e/test_readme_commands.py runs it).
"""
from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT

DOCKERFILES = [ROOT / "Dockerfile", ROOT / "deploy" / "keystone" / "Dockerfile"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    found = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list, else the shell words."""
    return json.loads(args) if args.startswith("[") else shlex.split(args)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_image_runs_as_the_unprivileged_user_it_creates(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    users = [args for word, args in steps if word == "USER"]
    assert users, f"{dockerfile} has no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0), users[-1]
    created = " ".join(args for word, args in steps if word == "RUN")
    assert re.search(rf"useradd [^&]*--uid {uid}\b", created), f"no user with uid {uid} is created"
    assert steps.index(("USER", users[-1])) > max(i for i, (word, _) in enumerate(steps) if word == "RUN"), \
        "every RUN (the installs) comes before USER"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_image_has_a_healthcheck(dockerfile: Path) -> None:
    checks = [args for word, args in instructions(dockerfile) if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert re.fullmatch(r"(--[a-z-]+=\S+\s+)*CMD (\[.*\])", checks[0]), checks[0]
    command = exec_form(checks[0].split("CMD ", 1)[1])
    assert command[0] in ("compute-actions", "sh"), command


def test_api_image_installs_the_keystone_extra_and_names_its_config_files() -> None:
    steps = instructions(ROOT / "Dockerfile")
    assert any(word == "RUN" and "pip install" in args and '".[keystone]"' in args for word, args in steps)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("keystonemiddleware") for dep in extras["keystone"])
    copies = {exec_form(args)[-1]: exec_form(args)[0] for word, args in steps if word == "COPY"}
    env = dict(pair.split("=", 1) for word, args in steps if word == "ENV" for pair in shlex.split(args))
    # The installed package would look for config/ in site-packages: the image names the copies.
    for variable in ("COMPUTE_ACTIONS_CONFIG", "COMPUTE_ACTIONS_FLEET__FLEET_FILE"):
        path = Path(env[variable])
        assert path.parent == Path("/app") / copies["config"], variable
        assert (ROOT / copies["config"] / path.name).is_file(), variable
    assert env["HOME"].startswith("/home/")


def test_every_compose_service_has_a_healthcheck_our_cli_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import cli, health

    asked: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(health, "run_health", lambda _settings, worker, url, _timeout: asked.append((worker, url)) or 0)
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"redis", "keystone", "api", "worker", "flower"} <= set(services)
    ours = {}
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"service {name} has no healthcheck"
        if test[:2] == ["CMD", "compute-actions"]:
            assert cli.main(test[2:]) == 0, (name, test)
            ours[name] = asked.pop()
    assert ours == {
        "api": (None, "http://127.0.0.1:8774/readyz"),
        "worker": ("worker@%h", None),
        "flower": (None, "http://${FLOWER_USER:-admin}:${FLOWER_PASSWORD:-change-me}@127.0.0.1:5555/"),
    }
