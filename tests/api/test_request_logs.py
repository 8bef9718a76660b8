"""The API's access line per request, and the request id it returns being the one its worker logs."""
from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from api.app import ACCESS_LOG, create_app
from compute import log_context
from compute.settings import Settings
from tests.api.conftest import ADMIN, mv
from tests.support.contexts import IMAGE_ID
from tests.support.engine import Engine
from workers import logs


def access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOG.name]


def test_access_line__method_path_route_status_duration_and_the_returned_request_id(
        engine_client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOG.name):
        response = engine_client.get("/v2.1/servers/00000000-0000-4000-8000-000000000000?all_tenants=1", headers=ADMIN)
    assert response.status_code == 404
    [line] = access_lines(caplog)
    assert (line.method, line.path, line.route, line.status) == (
        "GET", "/v2.1/servers/00000000-0000-4000-8000-000000000000", "/v2.1/servers/<server_id>", 404)
    assert line.request_id == response.headers["x-openstack-request-id"] == response.headers["x-compute-request-id"]
    assert line.duration_ms >= 0
    assert line.getMessage().startswith(
        "GET /v2.1/servers/00000000-0000-4000-8000-000000000000?all_tenants=1 404 ")


def test_access_line__also_for_a_request_refused_at_the_gate(engine_client: FlaskClient,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOG.name):
        response = engine_client.get("/v2.1/servers")  # no token
    assert response.status_code == 401
    [line] = access_lines(caplog)
    assert (line.status, line.request_id) == (401, response.headers["x-openstack-request-id"])


def test_lines_logged_while_serving__carry_its_request_id_and_nothing_stays_bound(
        engine: Engine, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings, engine.service)

    def probe() -> str:
        logging.getLogger("api.probe").warning("inside the request")
        return "ok"

    app.add_url_rule("/probe", view_func=probe)
    caplog.handler.addFilter(logs.ContextFilter())  # as the CLI's handler has
    response = app.test_client().get("/probe")
    [line] = [r for r in caplog.records if r.name == "api.probe"]
    assert line.request_id == response.headers["x-openstack-request-id"]
    assert log_context.current() == {}


def test_the_request_id_an_action_returns__is_the_one_its_worker_logs(
        engine_client: FlaskClient, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    response = engine_client.post("/v2.1/servers", headers=ADMIN, json={"server": {
        "name": "vm", "flavorRef": "2", "imageRef": IMAGE_ID}})
    assert response.status_code == 202
    engine.drain()
    server_id = response.get_json()["server"]["id"]
    with caplog.at_level(logging.INFO, logger="tasks.flow"):
        response = engine_client.post(f"/v2.1/servers/{server_id}/action", headers={**ADMIN, **mv("2.34")},
                            json={"os-migrateLive": {"host": None, "block_migration": "auto"}})
        assert response.status_code == 202
        engine.drain()
    returned = response.headers["x-openstack-request-id"]
    worker_lines = [r for r in caplog.records if r.name == "tasks.flow"]
    assert worker_lines and {r.request_id for r in worker_lines} == {returned}
    assert {r.action for r in worker_lines} == {"live-migration"}
    assert {r.server_id for r in worker_lines} == {server_id}
