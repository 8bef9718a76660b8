"""A stand-in identity v3 version document, public.

``openstack server list`` insists on an identity v3 endpoint even with the admin_token
plugin; pointing ``identity_endpoint_override`` here satisfies it (no other
identity call is made; shared/spec/clients.md §1).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api.links import root_url

bp = Blueprint("identity", __name__)


@bp.get("/identity/v3")
@bp.get("/identity/v3/")
def show_identity_v3() -> Any:
    return jsonify({"version": {
        "id": "v3.14",
        "status": "stable",
        "links": [{"rel": "self", "href": f"{root_url()}/identity/v3/"}],
    }})
