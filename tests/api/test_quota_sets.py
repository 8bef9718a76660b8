"""Quotas: os-quota-sets, os-quota-class-sets, and their enforcement on server create and createBackup.

Nova's defaults (instances 10, cores 20, ram 51200, metadata_items 128), its bodies per
microversion (2.36, 2.50, 2.57), its policy defaults and its 403/400 messages.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import (
    ADMIN,
    IMAGE_ID,
    OTHER,
    OWNER,
    activate,
    fault,
    mv,
    post_action,
)
from tests.support.contexts import demo_ctx

ALL = {"cores", "fixed_ips", "floating_ips", "injected_file_content_bytes", "injected_file_path_bytes",
       "injected_files", "instances", "key_pairs", "metadata_items", "ram", "security_group_rules",
       "security_groups", "server_group_members", "server_groups"}
NETWORK = {"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}
INJECTED = {"injected_file_content_bytes", "injected_file_path_bytes", "injected_files"}
DEFAULTS = {"cores": 20, "fixed_ips": -1, "floating_ips": -1, "injected_file_content_bytes": 10240,
            "injected_file_path_bytes": 255, "injected_files": 5, "instances": 10, "key_pairs": 100,
            "metadata_items": 128, "ram": 51200, "security_group_rules": -1, "security_groups": -1,
            "server_group_members": 10, "server_groups": 10}


def create(client: Any, headers: dict[str, str] = OWNER, flavor: str = "1", **server: Any) -> Any:
    body = {"server": {"name": "vm", "imageRef": IMAGE_ID, "flavorRef": flavor, **server}}
    return client.post("/v2.1/servers", json=body, headers=headers)


def put_quotas(client: Any, project: str, values: dict[str, Any], query: str = "", version: str = "2.1",
               headers: dict[str, str] = ADMIN) -> Any:
    return client.put(f"/v2.1/os-quota-sets/{project}{query}", json={"quota_set": values},
                      headers={**headers, **mv(version)})


def get(client: Any, path: str, headers: dict[str, str] = ADMIN, version: str = "2.1") -> Any:
    return client.get(f"/v2.1{path}", headers={**headers, **mv(version)})


# ---- show, defaults, detail per microversion -----------------------------------------------------
@pytest.mark.parametrize("version, hidden", [("2.1", set()), ("2.35", set()), ("2.36", NETWORK),
                                             ("2.56", NETWORK), ("2.57", NETWORK | INJECTED),
                                             ("2.104", NETWORK | INJECTED)])
def test_show__novas_defaults_and_fields_per_microversion(client, version, hidden):
    for path in ("/os-quota-sets/demo", "/os-quota-sets/demo/defaults"):
        response = get(client, path, OWNER, version)
        assert response.status_code == 200
        body = response.get_json()["quota_set"]
        assert body == {"id": "demo", **{k: v for k, v in DEFAULTS.items() if k not in hidden}}


def test_detail__limit_in_use_reserved_counted_from_the_servers(client, make_server):
    make_server("a")
    make_server("b")
    body = get(client, "/os-quota-sets/demo/detail", OWNER, "2.57").get_json()["quota_set"]
    assert set(body) == {"id"} | (ALL - NETWORK - INJECTED)
    assert body["instances"] == {"limit": 10, "in_use": 2, "reserved": 0}
    assert body["cores"] == {"limit": 20, "in_use": 2, "reserved": 0}
    assert body["ram"] == {"limit": 51200, "in_use": 1024, "reserved": 0}
    assert body["key_pairs"] == {"limit": 100, "in_use": 0, "reserved": 0}
    other = get(client, "/os-quota-sets/other/detail").get_json()["quota_set"]
    assert other["instances"]["in_use"] == 0


def test_detail__user_id_counts_that_users_servers(client, make_server):
    make_server("alice's")
    make_server("demo's", ctx=demo_ctx())
    alice = get(client, "/os-quota-sets/demo/detail?user_id=alice").get_json()["quota_set"]
    assert alice["instances"] == {"limit": 10, "in_use": 1, "reserved": 0}
    project = get(client, "/os-quota-sets/demo/detail").get_json()["quota_set"]
    assert project["instances"]["in_use"] == 2


# ---- update and delete ---------------------------------------------------------------------------
def test_update__sets_limits_and_answers_without_id(client):
    response = put_quotas(client, "demo", {"instances": 3, "cores": "7", "force": "True"}, version="2.57")
    assert response.status_code == 200
    body = response.get_json()["quota_set"]
    assert "id" not in body and set(body) == ALL - NETWORK - INJECTED
    assert (body["instances"], body["cores"], body["ram"]) == (3, 7, 51200)
    shown = get(client, "/os-quota-sets/demo", OWNER).get_json()["quota_set"]
    assert (shown["instances"], shown["cores"]) == (3, 7)
    assert get(client, "/os-quota-sets/demo/defaults").get_json()["quota_set"]["instances"] == 10
    assert get(client, "/os-quota-sets/other").get_json()["quota_set"]["instances"] == 10


def test_update__below_usage_is_novas_400_unless_forced(client, make_server):
    make_server("a")
    make_server("b")
    response = put_quotas(client, "demo", {"instances": 1})
    assert fault(response) == ("badRequest", 400, ("Quota limit 1 for instances must be greater than or equal "
                                                  "to already used and reserved 2."))
    assert put_quotas(client, "demo", {"instances": 1, "force": True}).status_code == 200
    assert get(client, "/os-quota-sets/demo").get_json()["quota_set"]["instances"] == 1


def test_update__a_user_quota_may_not_pass_what_the_project_has_left(client):
    assert put_quotas(client, "demo", {"instances": 5}).status_code == 200
    assert put_quotas(client, "demo", {"instances": 3}, "?user_id=bob").status_code == 200
    response = put_quotas(client, "demo", {"instances": 3}, "?user_id=carol")
    assert fault(response) == ("badRequest", 400, "Quota limit 3 for instances must be less than or equal to 2.")
    # the project may not drop below what its users' quotas hand out
    response = put_quotas(client, "demo", {"instances": 2})
    assert fault(response)[2] == ("Quota limit 2 for instances must be greater than or equal to already used "
                                  "and reserved 3.")
    bob = get(client, "/os-quota-sets/demo?user_id=bob").get_json()["quota_set"]
    carol = get(client, "/os-quota-sets/demo?user_id=carol").get_json()["quota_set"]
    assert (bob["instances"], carol["instances"]) == (3, 5)


@pytest.mark.parametrize("values, message", [
    ({"instances": -2}, "Invalid input for field/attribute instances. Value: -2. -2 is less than the minimum of -1"),
    ({"instances": 2**31}, ("Invalid input for field/attribute instances. Value: 2147483648. "
                           "2147483648 is greater than the maximum of 2147483647")),
    ({"instances": "9" * 4301}, None),
    ({"instances": "1.5"}, ("Invalid input for field/attribute instances. Value: 1.5. '1.5' does not match "
                           "'^-?[0-9]+$'")),
    ({"instances": True}, ("Invalid input for field/attribute instances. Value: True. True is not of type "
                          "'integer', 'string'")),
    ({"bogus": 1}, ("Invalid input for field/attribute quota_set. Value: {'bogus': 1}. Additional properties "
                   "are not allowed ('bogus' was unexpected)")),
    ({"force": "maybe"}, None),
])
def test_update__schema(client, values, message):
    response = put_quotas(client, "demo", values)
    assert response.status_code == 400
    if message is not None:
        assert fault(response)[2] == message


@pytest.mark.parametrize("version, key, code", [("2.35", "floating_ips", 200), ("2.36", "floating_ips", 400),
                                                ("2.56", "injected_files", 200), ("2.57", "injected_files", 400)])
def test_update__removed_keys_are_refused_from_their_microversion(client, version, key, code):
    assert put_quotas(client, "demo", {key: 3}, version=version).status_code == code


def test_delete__reverts_the_project_and_its_users_to_the_defaults(client):
    put_quotas(client, "demo", {"instances": 4})
    put_quotas(client, "demo", {"instances": 2}, "?user_id=bob")
    response = client.delete("/v2.1/os-quota-sets/demo?user_id=bob", headers=ADMIN)
    assert (response.status_code, response.data) == (202, b"")
    assert get(client, "/os-quota-sets/demo?user_id=bob").get_json()["quota_set"]["instances"] == 4
    put_quotas(client, "demo", {"instances": 2}, "?user_id=bob")
    assert client.delete("/v2.1/os-quota-sets/demo", headers=ADMIN).status_code == 202
    assert get(client, "/os-quota-sets/demo").get_json()["quota_set"]["instances"] == 10
    assert get(client, "/os-quota-sets/demo?user_id=bob").get_json()["quota_set"]["instances"] == 10


def test_query__other_keys_are_refused_from_2_75(client):
    assert get(client, "/os-quota-sets/demo?foo=1", version="2.74").status_code == 200
    response = get(client, "/os-quota-sets/demo?foo=1", version="2.75")
    assert fault(response) == ("badRequest", 400, "Additional properties are not allowed ('foo' was unexpected)")
    assert get(client, "/os-quota-sets/demo?user_id=bob", version="2.75").status_code == 200


@pytest.mark.parametrize("call, codes", [
    (lambda c, h: c.get("/v2.1/os-quota-sets/demo", headers=h), {"admin": 200, "owner": 200, "other": 403}),
    (lambda c, h: c.get("/v2.1/os-quota-sets/demo/detail", headers=h), {"admin": 200, "owner": 200, "other": 403}),
    (lambda c, h: c.get("/v2.1/os-quota-sets/demo/defaults", headers=h), {"admin": 200, "owner": 200, "other": 200}),
    (lambda c, h: c.put("/v2.1/os-quota-sets/demo", json={"quota_set": {"instances": 5}}, headers=h),
     {"admin": 200, "owner": 403, "other": 403}),
    (lambda c, h: c.delete("/v2.1/os-quota-sets/demo", headers=h), {"admin": 202, "owner": 403, "other": 403}),
    (lambda c, h: c.get("/v2.1/os-quota-class-sets/default", headers=h), {"admin": 200, "owner": 403, "other": 403}),
    (lambda c, h: c.get("/v2.1/limits", headers=h), {"admin": 200, "owner": 200, "other": 200}),
    (lambda c, h: c.get("/v2.1/limits?tenant_id=demo", headers=h), {"admin": 200, "owner": 403, "other": 403}),
], ids=["show", "detail", "defaults", "update", "delete", "class show", "limits", "limits other project"])
def test_policy__novas_rules_with_the_classic_defaults(client, call, codes):
    for caller, headers in (("admin", ADMIN), ("owner", OWNER), ("other", OTHER)):
        assert call(client, headers).status_code == codes[caller], caller


def test_policy__rule_names_in_the_403(client):
    response = put_quotas(client, "demo", {"instances": 5}, headers=OWNER)
    assert fault(response) == ("forbidden", 403, ("Policy doesn't allow os_compute_api:os-quota-sets:update "
                                                 "to be performed."))


# ---- quota classes --------------------------------------------------------------------------------
@pytest.mark.parametrize("version, shown", [("2.1", ALL - {"server_groups", "server_group_members"}),
                                            ("2.50", ALL - NETWORK), ("2.57", ALL - NETWORK - INJECTED)])
def test_quota_class__fields_per_microversion(client, version, shown):
    body = get(client, "/os-quota-class-sets/default", version=version).get_json()["quota_class_set"]
    assert body == {"id": "default", **{k: DEFAULTS[k] for k in shown}}


def test_quota_class__default_changes_the_defaults_of_every_project(client):
    response = client.put("/v2.1/os-quota-class-sets/default", json={"quota_class_set": {"instances": 2}},
                          headers={**ADMIN, **mv("2.57")})
    assert response.status_code == 200
    assert "id" not in response.get_json()["quota_class_set"]
    assert response.get_json()["quota_class_set"]["instances"] == 2
    assert get(client, "/os-quota-sets/demo/defaults").get_json()["quota_set"]["instances"] == 2
    assert get(client, "/os-quota-sets/demo").get_json()["quota_set"]["instances"] == 2
    assert create(client).status_code == 202
    assert create(client).status_code == 202
    assert fault(create(client))[1] == 403
    # another class changes nothing for projects
    client.put("/v2.1/os-quota-class-sets/gold", json={"quota_class_set": {"cores": 99}}, headers=ADMIN)
    assert get(client, "/os-quota-sets/demo").get_json()["quota_set"]["cores"] == 20
    assert get(client, "/os-quota-class-sets/gold").get_json()["quota_class_set"]["cores"] == 99


# ---- limits ---------------------------------------------------------------------------------------
def test_limits__absolute_limits_and_usage_per_microversion(client, make_server):
    make_server("a")
    body = get(client, "/limits", OWNER).get_json()["limits"]
    assert body["rate"] == []
    assert body["absolute"] == {
        "maxTotalCores": 20, "maxPersonalitySize": 10240, "maxPersonality": 5, "maxTotalInstances": 10,
        "maxTotalKeypairs": 100, "maxTotalFloatingIps": -1, "maxServerMeta": 128, "maxImageMeta": 128,
        "maxTotalRAMSize": 51200, "maxSecurityGroupRules": -1, "maxSecurityGroups": -1,
        "maxServerGroupMembers": 10, "maxServerGroups": 10,
        "totalRAMUsed": 512, "totalCoresUsed": 1, "totalInstancesUsed": 1, "totalFloatingIpsUsed": 0,
        "totalSecurityGroupsUsed": 0, "totalServerGroupsUsed": 0,
    }
    keys = {v: set(get(client, "/limits", OWNER, v).get_json()["limits"]["absolute"])
            for v in ("2.36", "2.39", "2.57")}
    assert {"maxTotalFloatingIps", "maxSecurityGroups", "totalSecurityGroupsUsed"} & keys["2.36"] == set()
    assert "maxImageMeta" in keys["2.36"] and "maxImageMeta" not in keys["2.39"]
    assert "maxPersonality" in keys["2.39"] and "maxPersonality" not in keys["2.57"]
    assert keys["2.57"] == {"maxTotalCores", "maxTotalInstances", "maxTotalKeypairs", "maxServerMeta",
                            "maxTotalRAMSize", "maxServerGroupMembers", "maxServerGroups", "totalRAMUsed",
                            "totalCoresUsed", "totalInstancesUsed", "totalServerGroupsUsed"}


def test_limits__an_admin_reads_another_project(client, make_server):
    make_server("a")
    put_quotas(client, "demo", {"instances": 7})
    admin_own = get(client, "/limits").get_json()["limits"]["absolute"]
    demo = get(client, "/limits?tenant_id=demo").get_json()["limits"]["absolute"]
    assert (admin_own["maxTotalInstances"], admin_own["totalInstancesUsed"]) == (10, 0)
    assert (demo["maxTotalInstances"], demo["totalInstancesUsed"]) == (7, 1)


# ---- enforcement: server create --------------------------------------------------------------------
def test_create__the_eleventh_server_is_novas_403(client, store):
    for _ in range(10):
        assert create(client).status_code == 202
    response = create(client)
    assert fault(response) == ("forbidden", 403, ("Quota exceeded for instances: Requested 1, but already used "
                                                 "10 of 10 instances"))
    assert len(store.list_instances()) == 10


def test_create__cores_and_ram_name_every_resource_over(client, store):
    put_quotas(client, "demo", {"cores": 3, "ram": 8192})
    assert create(client, flavor="3").status_code == 202  # 2 vcpus, 4096 MiB
    response = create(client, flavor="3")
    assert fault(response) == ("forbidden", 403, ("Quota exceeded for cores: Requested 2, but already used 2 of 3 "
                                                 "cores"))
    put_quotas(client, "demo", {"cores": 20, "ram": 4096, "instances": 1, "force": True})
    response = create(client, flavor="4")
    assert fault(response)[2] == ("Quota exceeded for instances, ram: Requested 1, 8192, but already used 1, 4096 "
                                  "of 1, 4096 instances, ram")


def test_create__a_user_quota_counts_that_users_servers(client):
    put_quotas(client, "demo", {"instances": 1}, "?user_id=alice")
    assert create(client).status_code == 202
    response = create(client)
    assert fault(response)[2] == "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances"
    assert create(client, headers={"X-Auth-Token": "demo:demo"}).status_code == 202


def test_create__a_server_in_error_counts_until_deleted_then_is_given_back(client, store):
    put_quotas(client, "demo", {"instances": 1})
    server_id = create(client).get_json()["server"]["id"]
    activate(store, server_id, vm_state="error")
    assert fault(create(client))[1] == 403

    def deleted(inst: Any) -> None:
        inst.deleted = True
        inst.vm_state = "deleted"

    store.update_instance(server_id, deleted)
    store.update_instance(server_id, deleted)  # a rerun of the delete step gives nothing back twice
    assert create(client).status_code == 202
    assert fault(create(client))[1] == 403
    detail = get(client, "/os-quota-sets/demo/detail").get_json()["quota_set"]
    assert detail["instances"]["in_use"] == 1


def test_create__a_refused_enqueue_gives_the_quota_back(client, store, enqueuer):
    from compute import errors

    put_quotas(client, "demo", {"instances": 1})
    enqueuer.fail_with = errors.QueueUnavailable("broker down")
    assert create(client).status_code == 503
    enqueuer.fail_with = None
    assert create(client).status_code == 202


def test_create__unlimited(client):
    put_quotas(client, "demo", {"instances": -1, "cores": -1, "ram": -1})
    for _ in range(12):
        assert create(client).status_code == 202


def test_create__max_count_of_4301_nines_is_a_400_not_a_500(client, store):
    response = create(client, max_count="9" * 4301)
    assert response.status_code == 400
    assert store.list_instances() == []
    assert create(client, min_count="0001", max_count=1).status_code == 202


# ---- metadata -------------------------------------------------------------------------------------
def test_create__more_metadata_items_than_the_quota_is_novas_403(client, store):
    response = create(client, metadata={f"k{i}": "v" for i in range(129)})
    assert fault(response) == ("forbidden", 403, "Maximum number of metadata items exceeds 128")
    assert store.list_instances() == []
    assert create(client, metadata={f"k{i}": "v" for i in range(128)}).status_code == 202
    put_quotas(client, "demo", {"metadata_items": 2})
    assert fault(create(client, metadata={"a": "1", "b": "2", "c": "3"}))[2] == (
        "Maximum number of metadata items exceeds 2")


@pytest.mark.parametrize("metadata", [{"k" * 256: "v"}, {"k": "v" * 256}, {"": "v"}])
def test_create__metadata_key_or_value_over_255_is_a_400(client, metadata):
    assert create(client, metadata=metadata).status_code == 400


def backup(rotation: Any = 1, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "b", "backup_type": "daily", "rotation": rotation}
    if metadata is not None:
        body["metadata"] = metadata
    return {"createBackup": body}


@pytest.mark.parametrize("version", ["2.1", "2.39", "2.45"])
def test_backup__metadata_over_the_quota_is_403_at_every_microversion(client, active_server, version):
    response = post_action(client, active_server.id, backup(metadata={f"k{i}": "v" for i in range(4200)}),
                           {**OWNER, **mv(version)})
    assert fault(response) == ("forbidden", 403, "Image metadata limit exceeded")
    ok = post_action(client, active_server.id, backup(metadata={f"k{i}": "v" for i in range(128)}),
                     {**OWNER, **mv(version)})
    assert ok.status_code == 202


@pytest.mark.parametrize("metadata", [{"k" * 256: "v"}, {"k": "v" * 256}])
def test_backup__metadata_key_or_value_over_255_is_a_400(client, active_server, metadata):
    assert post_action(client, active_server.id, backup(metadata=metadata), OWNER).status_code == 400


@pytest.mark.parametrize("rotation", [33, "33", 10**9, "9" * 4300])
def test_backup__rotation_above_the_cap_is_a_400(client, active_server, store, rotation):
    response = post_action(client, active_server.id, backup(rotation=rotation), OWNER)
    assert response.status_code == 400
    message = fault(response)[2]
    assert message.startswith("Invalid input for field/attribute rotation. Value: ")
    assert message.endswith("is greater than the maximum of 32")
    assert store.get_instance(active_server.id).task_state is None


def test_backup__rotation_of_4301_digits_is_a_400_not_a_500(client, active_server):
    response = post_action(client, active_server.id, backup(rotation="9" * 4301), OWNER)
    assert response.status_code == 400


@pytest.mark.parametrize("rotation", [0, 32, "032"])
def test_backup__rotation_up_to_the_cap_is_accepted(client, active_server, store, rotation):
    response = post_action(client, active_server.id, backup(rotation=rotation), OWNER)
    assert response.status_code == 202
    run = store.get_run(response.headers["x-openstack-request-id"])
    assert run.params["rotation"] == int(str(rotation))


def test_backup__the_cap_is_a_setting(make_app, active_server):
    client = make_app(quota={"max_backup_rotation": 2}).test_client()
    assert fault(post_action(client, active_server.id, backup(rotation=3), OWNER))[2].endswith(
        "is greater than the maximum of 2")
    unlimited = make_app(quota={"max_backup_rotation": -1}).test_client()
    assert post_action(unlimited, active_server.id, backup(rotation=10**9), OWNER).status_code == 202
