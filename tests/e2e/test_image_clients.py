"""The image service and the dev identity through the real clients, against `compute-actions dev`.

OSC and the SDK reach the image service through the clouds.yaml ``image_endpoint_override``;
novaclient's ``nova`` CLI and Tempest authenticate against the dev identity and read the
image endpoint from the token's catalog. The module runs its own `compute-actions dev`, so its
servers count against no other module's quota.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest

from tests.e2e.conftest import ROOT, DevServer, running_dev_server
from tests.e2e.test_real_clients import sdk
from tests.support.contexts import IMAGE_ID
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

CIRROS = "cirros-0.6.2-x86_64-disk"
TEMPEST_PYTHON = ROOT / ".cache" / "tempest-venvs" / "tempest" / "bin" / "python"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    with running_dev_server(tmp_path_factory.mktemp("image-dev")) as server:
        yield server


def base_url(dev_server: DevServer) -> str:
    return dev_server.endpoint.rsplit("/v2.1", 1)[0]


def cli_json(dev_server: DevServer, *args: str, timeout: float = 120) -> object:
    done = dev_server.openstack(*args, "-f", "json", timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def active_server(conn: openstack.connection.Connection, name: str) -> str:
    server = conn.compute.create_server(name=name, image_id=IMAGE_ID, flavor_id="1", networks="none")
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=90, interval=0.5).id


def test_openstack_image_list__the_fleet_image_is_active(dev_server: DevServer) -> None:
    images = {i["Name"]: i for i in cli_json(dev_server, "image", "list")}
    assert images[CIRROS]["Status"] == "active" and images[CIRROS]["ID"] == IMAGE_ID
    shown = cli_json(dev_server, "image", "show", CIRROS)
    assert shown["disk_format"] == "qcow2" and shown["visibility"] == "public" and shown["size"] == 21430272


def test_openstack_server_backup_create_wait__returns_when_active_then_delete(dev_server: DevServer) -> None:
    conn = sdk(dev_server)
    server_id = active_server(conn, "img-backup-vm")
    started = time.monotonic()
    created = dev_server.openstack("server", "backup", "create", "--wait", "--name", "img-b1", server_id)
    assert created.returncode == 0, created.stderr
    assert time.monotonic() - started < 90
    shown = cli_json(dev_server, "image", "show", "img-b1")
    assert shown["status"] == "active" and shown["properties"]["image_type"] == "backup"
    listed = {i["Name"]: i["Status"] for i in cli_json(dev_server, "image", "list")}
    assert listed["img-b1"] == "active" and listed[CIRROS] == "active"
    # openstack image set (JSON patch) and delete
    renamed = dev_server.openstack("image", "set", "--name", "img-b1-kept", "--property", "purpose=e2e", "img-b1")
    assert renamed.returncode == 0, renamed.stderr
    assert cli_json(dev_server, "image", "show", "img-b1-kept")["properties"]["purpose"] == "e2e"
    deleted = dev_server.openstack("image", "delete", "img-b1-kept")
    assert deleted.returncode == 0, deleted.stderr
    assert dev_server.openstack("image", "show", "img-b1-kept").returncode != 0
    assert "img-b1-kept" not in {i["Name"] for i in cli_json(dev_server, "image", "list")}
    assert shown["id"] not in {i.id for i in conn.compute.images()}  # the Nova proxy reads the same records


def test_nova_boot__finds_the_image_by_name_in_the_image_service(dev_server: DevServer) -> None:
    exe = shutil.which("nova", path=str(Path(sys.executable).parent)) or shutil.which("nova")
    assert exe, "the nova CLI comes with python-novaclient"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    done = subprocess.run(
        [exe, "--os-auth-url", f"{base_url(dev_server)}/identity/v3", "--os-token", "admin:admin",
         "--os-project-name", "admin", "boot", "--image", CIRROS, "--flavor", "1", "--nic", "none", "--poll",
         "nova-boot-vm"],
        check=False, capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert IMAGE_ID in done.stdout
    server = next(s for s in sdk(dev_server).compute.servers() if s.name == "nova-boot-vm")
    assert server.image.id == IMAGE_ID and server.status == "ACTIVE"
    assert f"GET /image/v2/images?name={CIRROS}" in dev_server.log.read_text()


def test_server_migration_list__by_project_and_user_names(dev_server: DevServer) -> None:
    conn = sdk(dev_server)
    server_id = active_server(conn, "img-migration-vm")
    conn.compute.migrate_server(server_id)
    wait_for(lambda: conn.compute.get_server(server_id).status == "VERIFY_RESIZE", 90, "cold migration to finish")
    for option, column in (("--project", "Project"), ("--user", "User")):
        rows = cli_json(dev_server, "server", "migration", "list", option, "admin")
        mine = [r for r in rows if r["Server UUID"] == server_id]
        assert mine and mine[0][column] == "admin" and mine[0]["Type"] == "migration", rows
    assert {"admin", "demo"} <= {p["Name"] for p in cli_json(dev_server, "project", "list")}
    assert {"admin", "demo"} <= {u["Name"] for u in cli_json(dev_server, "user", "list")}
    # an unknown name is OSC's (message-less) CommandError, as with Keystone: GET /projects/{x}, ?name= are 404, []
    assert dev_server.openstack("server", "migration", "list", "--project", "no-such-project").returncode == 1


def test_sdk_with_password_auth__uses_the_catalog(dev_server: DevServer) -> None:
    conn = openstack.connect(auth_url=f"{base_url(dev_server)}/identity/v3", username="demo", password="any",
                             project_name="demo", user_domain_name="Default", project_domain_name="Default")
    assert IMAGE_ID in {i.id for i in conn.image.images()}
    assert conn.image.get_image(IMAGE_ID).status == "active"
    assert conn.compute.get_flavor("1").name == "m1.tiny"


TEMPEST_SCRIPT = """
import sys
from tempest.common import waiters
from tempest.lib import auth
from tempest.lib.services.compute import servers_client
from tempest.lib.services.image.v2 import images_client

creds = auth.KeystoneV3Credentials(username="admin", password="x", project_name="admin",
                                   user_domain_name="Default", project_domain_name="Default")
provider = auth.KeystoneV3AuthProvider(creds, sys.argv[1])
provider.fill_credentials()
images = images_client.ImagesClient(provider, "image", "RegionOne", build_interval=0.5, build_timeout=60)
servers = servers_client.ServersClient(provider, "compute", "RegionOne")
resp = servers.create_backup(sys.argv[2], backup_type="daily", rotation=1, name="tempest-b1")
image_id = resp.response["location"].rsplit("/", 1)[-1]
assert waiters.wait_for_image_status(images, image_id, "active") == "active"
images.delete_image(image_id)
images.wait_for_resource_deletion(image_id)
print("ok", image_id)
"""


def test_tempest_image_waiters(dev_server: DevServer, tmp_path: Path) -> None:
    if not TEMPEST_PYTHON.exists():  # .ci/run builds it before the tests
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"no Tempest venv at {TEMPEST_PYTHON}: .ci/run builds it before the tests")
        pytest.skip("no Tempest venv in .cache/tempest-venvs (bash tests/tempest/run builds it)")
    server_id = active_server(sdk(dev_server), "tempest-image-vm")
    script = tmp_path / "waiters.py"
    script.write_text(TEMPEST_SCRIPT)
    done = subprocess.run([str(TEMPEST_PYTHON), str(script), f"{base_url(dev_server)}/identity/v3", server_id],
                          check=False, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stdout + done.stderr
