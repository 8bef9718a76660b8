"""Schemathesis against a running ``compute-actions dev``, from its own ``/openapi.json``.

Every operation of the document is called with generated requests (positive and negative, a
bounded number per operation, a fixed seed, one worker, no example database: the same run each
time), authenticated as the admin. The run fails on any 5xx (``not_a_server_error``) and on
any answer whose body does not match what the document says for its status
(``response_schema_conformance``: every 4xx/5xx a Nova fault, the main routes' bodies).

Two passes: the all-microversions document (the ``OpenStack-API-Version`` header is one of the
generated parameters), then the ``latest`` document with that header fixed. Path parameters
come, most of the time, from a dictionary of real ids made before the run (servers, a live
migration record, an aggregate, hypervisors, services, images, projects), so the calls reach
the views instead of stopping at 404. ``/readyz`` is left out: it answers 503 by design while
no worker beats (tests/api/test_health.py covers it).

The dev server is this test's own (the runs change quotas, fleet faults and the time scale).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import DevServer, running_dev_server
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ADMIN = {"X-Auth-Token": "admin:admin"}
IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"
SEED = 20261201
PASSES = [
    # (name, document query, extra header, examples per operation)
    ("every microversion", "", None, 12),
    ("latest", "?microversion=latest", "OpenStack-API-Version: compute latest", 12),
]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("schemathesis-dev")) as server:
        yield server


def call(server: DevServer, method: str, path: str, version: str = "2.1", **kwargs: Any) -> Any:
    headers = {**ADMIN, "OpenStack-API-Version": f"compute {version}"}
    response = requests.request(method, server.endpoint + path, headers=headers, timeout=30, **kwargs)
    assert response.status_code < 500, (method, path, response.status_code, response.text)
    return response


def seed(server: DevServer) -> dict[str, list[Any]]:
    """Real ids for the path parameters: three ACTIVE servers (one migrating live), an aggregate, ..."""
    servers = []
    for name in ("st-1", "st-2", "st-3"):
        body = {"server": {"name": name, "flavorRef": "1", "imageRef": IMAGE_ID, "networks": "none"}}
        servers.append(call(server, "POST", "/servers", json=body).json()["server"]["id"])

    def active() -> bool:
        found = call(server, "GET", "/servers/detail").json()["servers"]
        return sum(s["status"] == "ACTIVE" for s in found if s["id"] in servers) == len(servers)

    wait_for(active, 60, "the seeded servers to be ACTIVE")
    call(server, "POST", f"/servers/{servers[2]}/action", "2.34",
         json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
    migrations = [m["id"] for m in call(server, "GET", "/os-migrations", "2.80").json()["migrations"]]
    request_ids = [a["request_id"] for sid in servers
                   for a in call(server, "GET", f"/servers/{sid}/os-instance-actions").json()["instanceActions"]]
    aggregate = call(server, "POST", "/os-aggregates", json={"aggregate": {"name": "st-agg"}}).json()["aggregate"]
    hypervisors = call(server, "GET", "/os-hypervisors", "2.53").json()["hypervisors"]
    legacy_hypervisors = call(server, "GET", "/os-hypervisors").json()["hypervisors"]
    services = call(server, "GET", "/os-services", "2.53").json()["services"]
    legacy_services = call(server, "GET", "/os-services").json()["services"]
    images = [i["id"] for i in call(server, "GET", "/images").json()["images"]]
    hosts = [h["hypervisor_hostname"] for h in hypervisors]
    return {
        "servers": servers, "migrations": migrations, "request_ids": request_ids,
        "aggregates": [aggregate["id"], aggregate["uuid"]] if "uuid" in aggregate else [aggregate["id"]],
        "hypervisors": [h["id"] for h in hypervisors + legacy_hypervisors] + hosts[:2],
        "patterns": hosts[:2] + ["compute"], "services": [s["id"] for s in services + legacy_services],
        "images": images, "flavors": ["1", "2"], "projects": ["demo", "admin"], "quota_classes": ["default"],
        "hosts": hosts, "users": ["admin", "demo"], "domains": ["default"],
    }


BINDINGS = {
    "server_id": "servers", "migration_id": "migrations", "request_id": "request_ids",
    "aggregate_ref": "aggregates", "hypervisor_ref": "hypervisors", "pattern": "patterns",
    "service_ref": "services", "image_id": "images", "flavor_id": "flavors", "project_id": "projects",
    "quota_class": "quota_classes", "name": "hosts", "user_id": "users", "domain_id": "domains",
}


def toml_value(value: Any) -> str:
    return json.dumps(value)  # a JSON string or number is a TOML one


HOOKS = """import schemathesis

# Glance's JSON-patch media types (PATCH /image/v2/images/{id}) are JSON.
schemathesis.serializer.alias(["application/openstack-images-v2.1-json-patch",
                               "application/openstack-images-v2.0-json-patch"], "application/json")
"""


def write_config(path: Path, dictionaries: dict[str, list[Any]]) -> None:
    (path.parent / "schemathesis_hooks.py").write_text(HOOKS)
    lines = ['hooks = "schemathesis_hooks"', ""]
    for name, values in dictionaries.items():
        if values:
            lines += [f"[dictionaries.{name}]", f"values = [{', '.join(toml_value(str(v)) for v in values)}]", ""]
    lines.append("[parameters]")
    for parameter, name in BINDINGS.items():
        if dictionaries.get(name):
            lines.append(f'"path.{parameter}" = {{ dictionary = "{name}", probability = 0.75 }}')
    path.write_text("\n".join(lines) + "\n")


def run_schemathesis(server: DevServer, workdir: Path, query: str, header: str | None,
                     examples: int) -> tuple[dict[str, Any], str]:
    root = server.endpoint.removesuffix("/v2.1")
    report = workdir / "report.json"
    cmd = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(workdir / "schemathesis.toml"),
           "run", f"{root}/openapi.json{query}",
           "--checks", "not_a_server_error,response_schema_conformance",
           "--phases", "examples,coverage,fuzzing", "--max-examples", str(examples), "--seed", str(SEED),
           "--workers", "1", "--generation-database", "none", "--generation-with-security-parameters", "false",
           "--exclude-path", "/readyz", "--request-timeout", "70", "--no-color",
           "--header", f"X-Auth-Token: {ADMIN['X-Auth-Token']}",
           "--report", "json", "--report-json-path", str(report)]
    if header:
        cmd += ["--header", header]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(workdir), env.get("PYTHONPATH")) if p)
    done = subprocess.run(cmd, check=False, cwd=workdir, capture_output=True, text=True, timeout=240, env=env,
                          stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert report.is_file(), output
    return json.loads(report.read_text()), output


def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_document(fuzz_server: DevServer,
                                                                        tmp_path: Path) -> None:
    write_config(tmp_path / "schemathesis.toml", seed(fuzz_server))
    summary = []
    for name, query, header, examples in PASSES:
        workdir = tmp_path / name.replace(" ", "-")
        workdir.mkdir()
        for file in ("schemathesis.toml", "schemathesis_hooks.py"):
            (workdir / file).write_text((tmp_path / file).read_text())
        report, output = run_schemathesis(fuzz_server, workdir, query, header, examples)
        operations, cases = report["operations"], report["test_cases"]
        summary.append(f"{name}: {operations['tested']}/{operations['total']} operations, "
                       f"{cases['generated']} requests, {cases['unique_failures']} failures, "
                       f"{report['running_time']:.0f} s")
        assert report["exit_code"] == 0 and report["failures"] == [] and report["errors"] == [], output
        assert operations["errored"] == 0 and operations["tested"] == operations["selected"], output
        assert operations["tested"] >= 60 and cases["generated"] >= 20 * operations["tested"], output
    print("\n".join(summary))
    # The dev server itself logged no unexpected error while it was fuzzed.
    log = fuzz_server.log.read_text()
    assert "Unexpected API error" not in log and "Unmapped domain error" not in log, log[-5000:]
