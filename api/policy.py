"""Policy: Nova's rule names with the classic (seed-era) defaults, overridable by a YAML file.

The defaults are ``admin_api`` (``is_admin:True``) and ``admin_or_owner``
(``is_admin:True or project_id:%(project_id)s``), as Nova shipped them up to Train.
A deployment that wants today's Nova defaults writes them in ``[oslo_policy] policy_file``.
The target is always the server's project (or the caller's own for collection calls).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from oslo_config import cfg
from oslo_policy import opts as policy_opts
from oslo_policy import policy as oslo_policy

from api.errors import forbidden
from compute.context import RequestContext
from compute.settings import REPO_ROOT, Settings

ADMIN_API = "rule:admin_api"
ADMIN_OR_OWNER = "rule:admin_or_owner"
ANYONE = "@"

BASE_RULES = [
    oslo_policy.RuleDefault("context_is_admin", "role:admin", description="Decides who is an admin."),
    oslo_policy.RuleDefault("admin_or_owner", "is_admin:True or project_id:%(project_id)s",
                            description="Admins, or members of the target's project."),
    oslo_policy.RuleDefault("admin_api", "is_admin:True", description="Admins only."),
]

# rule name -> (default, what it guards)
API_RULES: dict[str, tuple[str, str]] = {
    "os_compute_api:servers:index": (ADMIN_OR_OWNER, "List servers"),
    "os_compute_api:servers:detail": (ADMIN_OR_OWNER, "List servers with details"),
    "os_compute_api:servers:index:get_all_tenants": (ADMIN_API, "List servers of all projects"),
    "os_compute_api:servers:detail:get_all_tenants": (ADMIN_API, "List servers of all projects, with details"),
    "os_compute_api:servers:show": (ADMIN_OR_OWNER, "Show a server"),
    "os_compute_api:servers:show:host_status": (ADMIN_API, "Show host_status in server views (2.16+)"),
    "os_compute_api:servers:create": (ADMIN_OR_OWNER, "Create a server"),
    "os_compute_api:servers:create:forced_host": (ADMIN_API, "Create a server on a host named in availability_zone"),
    "compute:servers:create:requested_destination": (
        ADMIN_API, "Create a server on a requested host and/or hypervisor_hostname (2.74+; the scheduler checks it)"),
    "os_compute_api:servers:delete": (ADMIN_OR_OWNER, "Delete a server"),
    "os_compute_api:servers:confirm_resize": (ADMIN_OR_OWNER, "confirmResize action"),
    "os_compute_api:servers:revert_resize": (ADMIN_OR_OWNER, "revertResize action"),
    "os_compute_api:os-extended-server-attributes": (ADMIN_API, "OS-EXT-SRV-ATTR:* keys in server views"),
    "os_compute_api:os-admin-password": (ADMIN_OR_OWNER, "changePassword action"),
    "os_compute_api:os-create-backup": (ADMIN_OR_OWNER, "createBackup action"),
    "os_compute_api:servers:stop": (ADMIN_OR_OWNER, "os-stop action"),
    "os_compute_api:servers:start": (ADMIN_OR_OWNER, "os-start action"),
    "os_compute_api:os-pause-server:pause": (ADMIN_OR_OWNER, "pause action"),
    "os_compute_api:os-pause-server:unpause": (ADMIN_OR_OWNER, "unpause action"),
    "os_compute_api:os-suspend-server:suspend": (ADMIN_OR_OWNER, "suspend action"),
    "os_compute_api:os-suspend-server:resume": (ADMIN_OR_OWNER, "resume action"),
    "os_compute_api:os-lock-server:lock": (ADMIN_OR_OWNER, "lock action"),
    "os_compute_api:os-lock-server:unlock": (ADMIN_OR_OWNER, "unlock action"),
    "os_compute_api:os-lock-server:unlock:unlock_override": (
        ADMIN_API, "unlock action on a server locked by the other party (owner or admin)"),
    "os_compute_api:os-admin-actions:reset_state": (ADMIN_API, "os-resetState action"),
    "os_compute_api:os-admin-actions:inject_network_info": (ADMIN_API, "injectNetworkInfo action"),
    "os_compute_api:os-admin-actions:reset_network": (ADMIN_API, "resetNetwork action"),
    "os_compute_api:os-migrate-server:migrate": (ADMIN_API, "migrate action without a host"),
    "os_compute_api:os-migrate-server:migrate:host": (ADMIN_API, "migrate action to a named host"),
    "os_compute_api:os-migrate-server:migrate_live": (ADMIN_API, "os-migrateLive action without a host"),
    "os_compute_api:os-migrate-server:migrate_live:host": (ADMIN_API, "os-migrateLive action to a named host"),
    "os_compute_api:os-instance-actions:list": (ADMIN_OR_OWNER, "List a server's instance actions"),
    "os_compute_api:os-instance-actions:show": (ADMIN_OR_OWNER, "Show an instance action"),
    "os_compute_api:os-instance-actions:events": (ADMIN_API, "Action events (< 2.51), their traceback and host"),
    "os_compute_api:os-instance-actions:events:details": (ADMIN_API, "Action event details (2.84+)"),
    "os_compute_api:servers:migrations:index": (ADMIN_API, "List a server's in-progress live migrations"),
    "os_compute_api:servers:migrations:show": (ADMIN_API, "Show a server's live migration"),
    "os_compute_api:servers:migrations:force_complete": (ADMIN_API, "Force-complete a live migration"),
    "os_compute_api:servers:migrations:delete": (ADMIN_API, "Abort a live migration"),
    "os_compute_api:os-migrations:index": (ADMIN_API, "List migrations"),
    "os_compute_api:os-hypervisors:list": (ADMIN_API, "List hypervisors"),
    "os_compute_api:os-hypervisors:list-detail": (ADMIN_API, "List hypervisors with details"),
    "os_compute_api:os-hypervisors:show": (ADMIN_API, "Show a hypervisor"),
    "os_compute_api:os-hypervisors:statistics": (ADMIN_API, "Hypervisor statistics (< 2.88)"),
    "os_compute_api:os-hypervisors:search": (ADMIN_API, "Search hypervisors by name (< 2.53)"),
    "os_compute_api:os-hypervisors:servers": (ADMIN_API, "List the servers of hypervisors (< 2.53)"),
    "os_compute_api:os-hypervisors:uptime": (ADMIN_API, "Show a hypervisor's uptime (< 2.88)"),
    "os_compute_api:os-services:list": (ADMIN_API, "List compute services"),
    "os_compute_api:os-services:update": (ADMIN_API, "Enable, disable or force down a compute service"),
    "os_compute_api:os-services:delete": (ADMIN_API, "Delete a compute service"),
    "os_compute_api:os-aggregates:index": (ADMIN_API, "List host aggregates"),
    "os_compute_api:os-aggregates:create": (ADMIN_API, "Create a host aggregate"),
    "os_compute_api:os-aggregates:show": (ADMIN_API, "Show a host aggregate"),
    "os_compute_api:os-aggregates:update": (ADMIN_API, "Rename a host aggregate or change its zone"),
    "os_compute_api:os-aggregates:delete": (ADMIN_API, "Delete a host aggregate"),
    "os_compute_api:os-aggregates:add_host": (ADMIN_API, "Add a host to a host aggregate"),
    "os_compute_api:os-aggregates:remove_host": (ADMIN_API, "Remove a host from a host aggregate"),
    "os_compute_api:os-aggregates:set_metadata": (ADMIN_API, "Set a host aggregate's metadata"),
    "os_compute_api:os-availability-zone:list": (ANYONE, "List availability zones"),
    "os_compute_api:os-availability-zone:detail": (ADMIN_API, "List availability zones with their hosts"),
    "os_compute_api:os-quota-sets:show": (ADMIN_OR_OWNER, "Show a project's (or user's) quotas"),
    "os_compute_api:os-quota-sets:detail": (ADMIN_OR_OWNER, "Show quotas with their usage"),
    "os_compute_api:os-quota-sets:defaults": (ANYONE, "Show the default quotas"),
    "os_compute_api:os-quota-sets:update": (ADMIN_API, "Update a project's (or user's) quotas"),
    "os_compute_api:os-quota-sets:delete": (ADMIN_API, "Revert a project's (or user's) quotas to the defaults"),
    "os_compute_api:os-quota-class-sets:show": (ADMIN_API, "Show a quota class"),
    "os_compute_api:os-quota-class-sets:update": (ADMIN_API, "Update a quota class (default: the defaults)"),
    "os_compute_api:limits": (ANYONE, "Show the caller's project's absolute limits"),
    "os_compute_api:limits:other_project": (ADMIN_API, "Show another project's limits (?tenant_id=)"),
    # not Nova's: the fleet control extension (/compute-actions/v1/fleet, api/views/fleet_control.py)
    "compute_actions:fleet": (ADMIN_API, "Fleet control: hosts up/down, fault rules, time scale"),
    # the image service (/image/v2, api/views/glance_images.py): Glance's rule names under
    # compute_actions:image:, target {"project_id": owner, "visibility": ...}; who sees which
    # image is Glance's rule (compute/images.py) whatever these say
    "compute_actions:image:get_images": (ANYONE, "List images (Glance get_images)"),
    "compute_actions:image:get_image": (ANYONE, "Show an image (Glance get_image)"),
    "compute_actions:image:delete_image": (ADMIN_OR_OWNER, "Delete an image (Glance delete_image)"),
    "compute_actions:image:modify_image": (ADMIN_OR_OWNER, "Change an image or its tags (Glance modify_image)"),
    # the dev identity API (/identity/v3, api/views/identity.py): Keystone's rule names and targets
    "identity:list_projects": (ADMIN_API, "List projects (Keystone)"),
    "identity:get_project": ("is_admin:True or project_id:%(target.project.id)s", "Show a project (Keystone)"),
    "identity:list_users": (ADMIN_API, "List users (Keystone)"),
    "identity:get_user": ("is_admin:True or user_id:%(target.user.id)s", "Show a user (Keystone)"),
}


def rule_defaults() -> list[oslo_policy.RuleDefault]:
    return BASE_RULES + [
        oslo_policy.RuleDefault(name, check, description=description)
        for name, (check, description) in API_RULES.items()
    ]


def resolve_policy_file(path: str | None) -> str | None:
    """Relative paths are taken from the repository root; a named file that is missing is an error."""
    if not path:
        return None
    resolved = Path(path) if Path(path).is_absolute() else REPO_ROOT / path
    if not resolved.is_file():
        raise FileNotFoundError(f"[oslo_policy] policy_file {resolved} does not exist")
    return str(resolved)


class PolicyEnforcer:
    def __init__(self, settings: Settings) -> None:
        conf = cfg.ConfigOpts()
        conf([], project="compute-actions", default_config_files=[], default_config_dirs=[])
        policy_opts.set_defaults(conf)
        policy_file = resolve_policy_file(settings.oslo_policy.policy_file)
        conf.set_override("policy_dirs", [], group="oslo_policy")
        if policy_file is not None:
            conf.set_override("policy_file", policy_file, group="oslo_policy")
        defaults = rule_defaults()
        self._enforcer = oslo_policy.Enforcer(conf, use_conf=policy_file is not None)
        self._enforcer.register_defaults(defaults)
        if policy_file is None:
            self._enforcer.set_rules(oslo_policy.Rules({r.name: r.check for r in defaults}), use_conf=False)
        self._enforcer.load_rules()

    def creds(self, ctx: RequestContext) -> dict[str, Any]:
        """As in Nova, ``is_admin`` in the credentials is what ``context_is_admin`` says."""
        creds = ctx.policy_creds()
        creds["is_admin"] = bool(self._enforcer.enforce("context_is_admin", {}, creds))
        return creds

    def allowed(self, ctx: RequestContext, rule: str, target: dict[str, Any]) -> bool:
        return bool(self._enforcer.enforce(rule, target, self.creds(ctx)))

    def authorize(self, ctx: RequestContext, rule: str, target: dict[str, Any]) -> None:
        if not self.allowed(ctx, rule, target):
            raise forbidden(f"Policy doesn't allow {rule} to be performed.")


def server_target(project_id: str | None, user_id: str | None = None) -> dict[str, Any]:
    return {"project_id": project_id, "user_id": user_id}


def sample_policy_yaml() -> str:
    """The commented listing of every default, shipped as config/policy.yaml."""
    lines = [
        "# compute-actions policy file (oslo.policy, YAML).",
        "#",
        "# Every rule below is commented out: these are the in-code defaults, Nova's",
        "# classic (seed-era) ones. Uncomment a line and change it to override a rule,",
        "# then point [oslo_policy] policy_file at this file.",
        "# For today's Nova defaults, for instance:",
        '#   "context_is_admin": "role:admin"',
        '#   "os_compute_api:os-create-backup": "(role:member and project_id:%(project_id)s) or role:admin"',
        "",
    ]
    for rule in rule_defaults():
        lines.append(f"# {rule.description}")
        lines.append(f'#"{rule.name}": "{rule.check_str}"')
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(sample_policy_yaml(), end="")
