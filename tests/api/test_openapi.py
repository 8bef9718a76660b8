"""``GET /openapi.json``: every route, bodies from the validators themselves, per microversion,
and the answers of the app conform to it (the e2e schemathesis run fuzzes the same document)."""
from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient

from api import schemas
from api.actions import ACTIONS
from api.microversions import MAX_VERSION, APIVersion
from api.openapi import ALL_VERSIONS, SKIPPED_ENDPOINTS, build_document
from api.views import change_password, create_server, live_migrate, migrate, reset_state
from compute.models import Instance, Migration
from compute.store import Store
from tests.api.conftest import ADMIN, UNKNOWN_ID, fault, mv, start_live

Doc = dict[str, Any]


def document(client: FlaskClient, query: str = "", **headers: str) -> Doc:
    response = client.get(f"/openapi.json{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def served(app: Flask) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<path:{name}>", f"{{{name}}}").replace(f"<{name}>", f"{{{name}}}")
        found.update((path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"})
    return found


def operations(doc: Doc) -> dict[tuple[str, str], Doc]:
    return {(path, method): op for path, item in doc["paths"].items() for method, op in item.items()}


def body_schema(op: Doc) -> Doc:
    return op["requestBody"]["content"]["application/json"]["schema"]


def action_ranges(doc: Doc, key: str) -> list[tuple[str, str]]:
    op = doc["paths"]["/v2.1/servers/{server_id}/action"]["post"]
    return [(r["min_version"], r["max_version"]) for r in op["requestBody"]["x-openstack-actions"][key]]


# ---- the document ----------------------------------------------------------------------------------------
def test_served_without_a_token_covering_every_route_and_method(app: Flask, client: FlaskClient) -> None:
    doc = document(client)
    assert doc["openapi"] == "3.1.0"
    assert set(operations(doc)) == served(app)
    assert len(operations(doc)) >= 60
    ids = [op["operationId"] for op in operations(doc).values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("query", ["", "?microversion=2.1", "?microversion=2.56", "?microversion=latest"])
def test_schemathesis_loads_every_operation_and_every_schema_is_valid_json_schema(client: FlaskClient,
                                                                                  query: str) -> None:
    doc = document(client, query)
    loaded = schemathesis.openapi.from_dict(doc)
    results = list(loaded.get_all_operations())
    assert len(results) == len(operations(doc))
    for result in results:
        result.ok()  # raises on an operation it cannot parse

    def schemas_in(node: Any) -> Any:
        if isinstance(node, dict):
            if "schema" in node and isinstance(node["schema"], dict):
                yield node["schema"]
            for value in node.values():
                yield from schemas_in(value)
        elif isinstance(node, list):
            for value in node:
                yield from schemas_in(value)

    for schema in schemas_in(doc):
        assert jsonschema_rs.meta.is_valid(schema), schema
        jsonschema_rs.validator_for(schema)  # compiles (its regular expressions too)


def test_every_request_body_is_described(client: FlaskClient) -> None:
    for query in ("", "?microversion=2.60"):
        for (path, method), op in operations(document(client, query)).items():
            body = op.get("requestBody")
            if body is not None:
                flag = body.get("x-request-schema", "from a validator")
                assert flag != "undescribed", (method, path, body.get("x-request-schema-error"))
                assert body["required"] is True


def test_bodies_are_the_validators_own_schemas(client: FlaskClient) -> None:
    doc = document(client, "?microversion=2.60")
    ops = operations(doc)
    assert body_schema(ops[("/v2.1/servers", "post")]) == schemas.json_schema_of(create_server.CREATE_SCHEMA)
    variants = body_schema(ops[("/v2.1/servers/{server_id}/action", "post")])["anyOf"]
    for validator in (reset_state.RESET_STATE_SCHEMA, change_password.CHANGE_PASSWORD_SCHEMA,
                      live_migrate.body_schema(APIVersion(2, 60)), migrate.MIGRATE_SCHEMA_V256):
        assert schemas.json_schema_of(validator) in variants
    keys = {next(iter(v["properties"])) for v in variants if "properties" in v}
    keys |= {next(iter(w["properties"])) for v in variants for w in v.get("anyOf", [])}
    assert keys == set(ACTIONS)


def test_action_bodies_per_microversion_range(client: FlaskClient) -> None:
    doc = document(client)
    assert action_ranges(doc, "os-migrateLive") == [("2.1", "2.24"), ("2.25", "2.29"), ("2.30", "2.67"),
                                                    ("2.68", str(MAX_VERSION))]
    assert action_ranges(doc, "migrate") == [("2.1", "2.55"), ("2.56", str(MAX_VERSION))]
    assert action_ranges(doc, "os-resetState") == [("2.1", str(MAX_VERSION))]
    [below, from_256] = doc["paths"]["/v2.1/servers/{server_id}/action"]["post"]["requestBody"][
        "x-openstack-actions"]["migrate"]
    assert below["schema"]["properties"] == {"migrate": {}}  # not validated below 2.56
    assert from_256["schema"] == schemas.json_schema_of(migrate.MIGRATE_SCHEMA_V256)
    services = doc["paths"]["/v2.1/os-services/{service_ref}"]["put"]["requestBody"]["x-openstack-microversions"]
    assert [(r["min_version"], r["max_version"]) for r in services] == [("2.1", "2.10"), ("2.11", "2.52"),
                                                                       ("2.53", str(MAX_VERSION))]


@pytest.mark.parametrize(("version", "force"), [("2.29", False), ("2.30", True), ("2.68", False)])
def test_one_microversion_is_exactly_what_it_accepts(client: FlaskClient, version: str, force: bool) -> None:
    by_query = document(client, f"?microversion={version}")
    assert document(client, **mv(version)) == by_query
    op = by_query["paths"]["/v2.1/servers/{server_id}/action"]["post"]
    [live] = [v for v in body_schema(op)["anyOf"] if "os-migrateLive" in v.get("properties", {})]
    assert ("force" in live["properties"]["os-migrateLive"]["properties"]) is force
    assert "x-openstack-actions" not in op["requestBody"]
    assert all(p["name"] != "OpenStack-API-Version" for p in op.get("parameters", []))


def test_microversion_bounds_of_routes(client: FlaskClient) -> None:
    ops = operations(document(client))
    assert ops[("/v2.1/servers/{server_id}/migrations", "get")]["x-openstack-min-version"] == "2.23"
    assert ops[("/v2.1/servers/{server_id}/migrations/{migration_id}/action", "post")][
        "x-openstack-min-version"] == "2.22"
    assert ops[("/v2.1/servers/{server_id}/migrations/{migration_id}", "delete")]["x-openstack-min-version"] == "2.24"
    assert ops[("/v2.1/servers", "get")]["x-openstack-min-version"] == "2.1"
    header = [p for p in ops[("/v2.1/servers", "get")]["parameters"] if p["name"] == "OpenStack-API-Version"]
    assert len(header[0]["schema"]["enum"]) == len(ALL_VERSIONS) + 1
    assert ops[("/openapi.json", "get")]["security"] == [] and ops[("/readyz", "get")]["security"] == []
    assert ops[("/v2.1/servers", "get")]["security"] == [{"noauth2": []}]


def test_a_bad_microversion_is_a_nova_fault(client: FlaskClient) -> None:
    response = client.get("/openapi.json?microversion=2.x")
    assert response.status_code == 400 and fault(response)[0] == "badRequest"
    response = client.get("/openapi.json?microversion=2.999")
    assert response.status_code == 406 and "maximum is 2.104" in fault(response)[2]


def test_the_document_is_built_once_per_version(app: Flask, client: FlaskClient) -> None:
    document(client)
    document(client, "?microversion=2.5")
    assert len(app.extensions["openapi_documents"]) == 2
    with app.test_request_context():
        assert build_document(app)["paths"].keys() == document(client)["paths"].keys()


# ---- the validators describe what they accept ---------------------------------------------------------
SAMPLES = [None, True, False, 0, 1, -1, 7, 2.5, "", " ", "a", "abc", " a", "a ", "a b", "auto", "true", "1", "01",
           "x" * 300, [], [1], ["a"], {}, {"a": "b"}, {"bad key!": "x"}, {"k": None}, {"k": "v" * 300},
           "70a599e0-31e7-49b7-b260-868f441e862b", "70A599E0-31E7-49B7-B260-868F441E862B",
           "{70a599e0-31e7-49b7-b260-868f441e862b}", "host-1.example_org", "host 1"]
VALIDATORS = {
    "any": schemas.any_value(), "null": schemas.null(), "string": schemas.string(),
    "string 1-3 ^a": schemas.string(min_length=1, max_length=3, pattern="^a"),
    "enum": schemas.enum("auto", 1, True), "integer": schemas.integer(), "integer>=0": schemas.integer(minimum=0),
    "digits>=0": schemas.integer(minimum=0, digit_strings=True),
    "digits>=1": schemas.integer(minimum=1, digit_strings=True),
    "boolean-like": schemas.boolean_like(), "uuid": schemas.uuid_string(), "name": schemas.name(max_length=5),
    "array": schemas.array(schemas.string(), min_items=1, max_items=2),
    "one_of": schemas.one_of(schemas.null(), schemas.integer()),
    "obj": schemas.obj({"a": schemas.string()}, required=["a"]),
    "obj+": schemas.obj({"a": schemas.string()}, additional=True),
    "metadata": schemas.metadata(), "nullable": schemas.nullable(schemas.fqdn(), "string"), "fqdn": schemas.fqdn(),
    "action": schemas.action("k", schemas.nullable(schemas.string(), "string")),
    "boolean-or-auto": live_migrate.boolean_or_auto(),
}


def accepts(validator: schemas.Validator, value: Any) -> bool:
    try:
        validator(value, ())
    except schemas.SchemaError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_each_building_block_and_its_json_schema_agree(name: str) -> None:
    validator = VALIDATORS[name]
    compiled = jsonschema_rs.validator_for(schemas.json_schema_of(validator))
    wrapped = [{"a": v} for v in SAMPLES] + [{"k": v} for v in SAMPLES]
    disagree = [v for v in SAMPLES + wrapped if accepts(validator, v) != compiled.is_valid(v)]
    assert disagree == []


def test_a_validator_without_a_description_is_any_value() -> None:
    def check(value: Any, path: schemas.Path) -> None:
        return None

    assert schemas.json_schema_of(check) == {}
    assert schemas.json_schema_of(schemas.array(check)) == {"type": "array", "items": {}}
    assert schemas.json_schema_of(schemas.described(check, {"type": "null"})) == {"type": "null"}


# ---- the app's answers conform to the document ------------------------------------------------------
def response_schema(doc: Doc, path: str, method: str, status: int) -> Doc | None:
    responses = doc["paths"][path][method]["responses"]
    found = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    assert found is not None, (path, method, status)
    if "$ref" in found:
        found = doc["components"]["responses"][found["$ref"].rsplit("/", 1)[1]]
    content = found.get("content", {}).get("application/json")
    return None if content is None else content["schema"]


def assert_conforms(doc: Doc, path: str, method: str, response: Any) -> None:
    schema = response_schema(doc, path, method, response.status_code)
    if schema is None:
        return
    body = json.loads(response.get_data(as_text=True))
    errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(body)]
    assert errors == [], (method, path, response.status_code, body)


@pytest.fixture
def live_migration(client: FlaskClient, store: Store, active_server: Instance) -> Migration:
    migration = start_live(client, store, active_server.id)
    record = store.get_migration(migration.id)
    store.overwrite_migration(record.model_copy(update={"status": "running", "dest_compute": "compute-kvm-2"}))
    return migration


@pytest.mark.parametrize("version", ["2.1", "2.23", "2.58", "2.80", "latest"])
def test_the_apps_answers_conform_to_the_document(client: FlaskClient, active_server: Instance,
                                                  live_migration: Migration, version: str) -> None:
    doc = document(client, f"?microversion={version}")
    headers = {**ADMIN, **mv(version)}
    sid = active_server.id
    [action] = client.get(f"/v2.1/servers/{sid}/os-instance-actions", headers=headers).get_json()["instanceActions"][:1]
    calls = [
        ("/", "get", "/", None), ("/v2.1", "get", "/v2.1", None), ("/healthz", "get", "/healthz", None),
        ("/readyz", "get", "/readyz", None), ("/identity/v3", "get", "/identity/v3", None),
        ("/v2.1/servers", "get", "/v2.1/servers", None),
        ("/v2.1/servers/detail", "get", "/v2.1/servers/detail", None),
        ("/v2.1/servers/{server_id}", "get", f"/v2.1/servers/{sid}", None),
        ("/v2.1/servers/{server_id}", "get", f"/v2.1/servers/{UNKNOWN_ID}", None),
        ("/v2.1/servers/{server_id}/os-instance-actions", "get", f"/v2.1/servers/{sid}/os-instance-actions", None),
        ("/v2.1/servers/{server_id}/os-instance-actions/{request_id}", "get",
         f"/v2.1/servers/{sid}/os-instance-actions/{action['request_id']}", None),
        ("/v2.1/os-migrations", "get", "/v2.1/os-migrations", None),
        ("/v2.1/servers/{server_id}/migrations", "get", f"/v2.1/servers/{sid}/migrations", None),
        ("/v2.1/servers/{server_id}/migrations/{migration_id}", "get",
         f"/v2.1/servers/{sid}/migrations/{live_migration.id}", None),
        ("/v2.1/flavors", "get", "/v2.1/flavors", None), ("/v2.1/flavors/detail", "get", "/v2.1/flavors/detail", None),
        ("/v2.1/flavors/{flavor_id}", "get", "/v2.1/flavors/1", None),
        ("/v2.1/images", "get", "/v2.1/images", None), ("/v2.1/images/detail", "get", "/v2.1/images/detail", None),
        ("/v2.1/limits", "get", "/v2.1/limits", None),
        ("/v2.1/os-availability-zone", "get", "/v2.1/os-availability-zone", None),
        ("/v2.1/os-availability-zone/detail", "get", "/v2.1/os-availability-zone/detail", None),
        ("/v2.1/os-quota-sets/{project_id}", "get", "/v2.1/os-quota-sets/demo", None),
        ("/v2.1/os-quota-sets/{project_id}/detail", "get", "/v2.1/os-quota-sets/demo/detail", None),
        ("/v2.1/os-quota-class-sets/{quota_class}", "get", "/v2.1/os-quota-class-sets/default", None),
        ("/v2.1/servers", "post", "/v2.1/servers",
         {"server": {"name": "vm2", "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}}),
        ("/v2.1/servers", "post", "/v2.1/servers", {"server": {"name": " bad"}}),
        ("/v2.1/servers/{server_id}/action", "post", f"/v2.1/servers/{sid}/action", {"nope": None}),
        ("/v2.1/servers/{server_id}/action", "post", f"/v2.1/servers/{sid}/action",
         {"os-resetState": {"state": "error"}}),
    ]
    for path, method, url, body in calls:
        response = client.open(url, method=method.upper(), json=body, headers=headers)
        assert response.status_code < 500 or url == "/readyz", (url, response.get_data(as_text=True))
        assert_conforms(doc, path, method, response)
    for status, response in ((401, client.get("/v2.1/servers")), (405, client.put("/v2.1/servers", headers=headers)),
                             (406, client.get("/v2.1/servers", headers={**ADMIN, **mv("2.999")})),
                             (415, client.post(f"/v2.1/servers/{sid}/action", data="x", headers={
                                 **headers, "Content-Type": "application/xml"}))):
        assert response.status_code == status
        assert_conforms(doc, "/v2.1/servers/{server_id}/action" if status == 415 else "/v2.1/servers",
                        "post" if status == 415 else "get", response)
