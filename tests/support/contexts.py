"""Request contexts and ids shared by the tests of every tier."""
from __future__ import annotations

from compute.context import RequestContext

IMAGE_ID = "70a599e0-31e7-49b7-b260-868f441e862b"  # the cirros image of config/fleet.yaml

ADMIN = RequestContext("admin", "admin", ["admin", "member", "reader"])


def admin_ctx() -> RequestContext:
    """A new admin request (its own request id)."""
    return RequestContext("admin", "admin", ["admin", "member", "reader"])


def demo_ctx() -> RequestContext:
    """A new request by a member of the ``demo`` project."""
    return RequestContext("demo", "demo", ["member", "reader"])
