"""The policy enforcer: classic defaults, overrides from a YAML file, the shipped sample."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from api.policy import API_RULES, PolicyEnforcer, rule_defaults, sample_policy_yaml
from compute.context import RequestContext
from compute.settings import REPO_ROOT, OsloPolicyOptions, Settings
from tests.api.conftest import OWNER, fault, post_action

ADMIN_CTX = RequestContext("admin", "admin", ["admin", "member", "reader"])
MEMBER_CTX = RequestContext("alice", "demo", ["member", "reader"])


def with_policy_file(settings: Settings, path: object) -> Settings:
    return settings.model_copy(update={"oslo_policy": OsloPolicyOptions(policy_file=str(path))})

ADMIN_OR_OWNER_RULES = {
    "os_compute_api:os-create-backup", "os_compute_api:servers:confirm_resize",
    "os_compute_api:servers:revert_resize", "os_compute_api:os-instance-actions:list",
    "os_compute_api:os-instance-actions:show", "os_compute_api:servers:create", "os_compute_api:servers:delete",
    "os_compute_api:servers:show", "os_compute_api:servers:index", "os_compute_api:servers:detail",
    "os_compute_api:os-admin-password", "os_compute_api:servers:stop", "os_compute_api:servers:start",
    "os_compute_api:os-pause-server:pause", "os_compute_api:os-pause-server:unpause",
    "os_compute_api:os-suspend-server:suspend", "os_compute_api:os-suspend-server:resume",
    "os_compute_api:os-lock-server:lock", "os_compute_api:os-lock-server:unlock",
}
ADMIN_API_RULES = {
    "os_compute_api:os-admin-actions:reset_state", "os_compute_api:os-admin-actions:inject_network_info",
    "os_compute_api:os-admin-actions:reset_network", "os_compute_api:os-migrate-server:migrate",
    "os_compute_api:os-migrate-server:migrate:host", "os_compute_api:os-migrate-server:migrate_live",
    "os_compute_api:os-migrate-server:migrate_live:host", "os_compute_api:os-instance-actions:events",
    "os_compute_api:os-instance-actions:events:details", "os_compute_api:servers:migrations:index",
    "os_compute_api:servers:migrations:show", "os_compute_api:servers:migrations:force_complete",
    "os_compute_api:servers:migrations:delete", "os_compute_api:os-migrations:index",
    "os_compute_api:os-hypervisors:list", "os_compute_api:os-hypervisors:list-detail",
    "os_compute_api:os-hypervisors:show", "os_compute_api:os-services:list",
    "os_compute_api:os-extended-server-attributes", "os_compute_api:servers:create:forced_host",
    "os_compute_api:servers:index:get_all_tenants", "os_compute_api:servers:detail:get_all_tenants",
    "os_compute_api:os-lock-server:unlock:unlock_override",
}


def test_defaults__are_the_classic_ones():
    defaults = {r.name: r.check_str for r in rule_defaults()}
    assert defaults["admin_api"] == "is_admin:True"
    assert defaults["admin_or_owner"] == "is_admin:True or project_id:%(project_id)s"
    assert defaults["context_is_admin"] == "role:admin"
    for name in ADMIN_OR_OWNER_RULES:
        assert defaults[name] == "rule:admin_or_owner", name
    for name in ADMIN_API_RULES:
        assert defaults[name] == "rule:admin_api", name


@pytest.mark.parametrize("rule", sorted(ADMIN_OR_OWNER_RULES))
def test_admin_or_owner__owner_and_admin_pass_others_fail(settings, rule):
    enforcer = PolicyEnforcer(settings)
    assert enforcer.allowed(MEMBER_CTX, rule, {"project_id": "demo"})
    assert not enforcer.allowed(MEMBER_CTX, rule, {"project_id": "other"})
    assert enforcer.allowed(ADMIN_CTX, rule, {"project_id": "other"})


@pytest.mark.parametrize("rule", sorted(ADMIN_API_RULES))
def test_admin_api__only_admin_passes(settings, rule):
    enforcer = PolicyEnforcer(settings)
    assert not enforcer.allowed(MEMBER_CTX, rule, {"project_id": "demo"})
    assert enforcer.allowed(ADMIN_CTX, rule, {"project_id": "demo"})


def test_policy_file__overrides_a_rule(make_app, active_server, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"os_compute_api:os-admin-actions:reset_state": "role:member"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    assert post_action(client, active_server.id, {"os-resetState": {"state": "error"}}, OWNER).status_code == 202


def test_policy_file__can_deny_the_admin(make_app, active_server, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"os_compute_api:os-admin-actions:reset_state": "!"\n')
    client = make_app(oslo_policy={"policy_file": str(policy_file)}).test_client()
    response = post_action(client, active_server.id, {"os-resetState": {"state": "error"}})
    assert fault(response) == ("forbidden", 403, "Policy doesn't allow "
                               "os_compute_api:os-admin-actions:reset_state to be performed.")


def test_policy_file__context_is_admin_decides_is_admin(settings, tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"context_is_admin": "role:cloud-admin"\n')
    enforcer = PolicyEnforcer(with_policy_file(settings, str(policy_file)))
    operator = RequestContext("op", "ops", ["cloud-admin"])
    assert enforcer.allowed(operator, "os_compute_api:os-services:list", {"project_id": "ops"})
    assert not enforcer.allowed(ADMIN_CTX, "os_compute_api:os-services:list", {"project_id": "admin"})


def test_policy_file__missing_file_fails_at_startup(settings, tmp_path):
    with pytest.raises(FileNotFoundError):
        PolicyEnforcer(with_policy_file(settings, str(tmp_path / "nope.yaml")))


def test_shipped_sample__matches_the_defaults_and_overrides_nothing(settings):
    shipped = Path(REPO_ROOT / "config" / "policy.yaml").read_text()
    assert shipped == sample_policy_yaml()
    assert yaml.safe_load(shipped) is None
    for name in API_RULES:
        assert f'#"{name}": ' in shipped
    enforcer = PolicyEnforcer(with_policy_file(settings, "config/policy.yaml"))
    assert not enforcer.allowed(MEMBER_CTX, "os_compute_api:os-services:list", {"project_id": "demo"})
    assert enforcer.allowed(MEMBER_CTX, "os_compute_api:servers:show", {"project_id": "demo"})
