"""A stand-in block-storage v3 version document, public; there is no volume service behind it.

``openstack availability zone list`` (without ``--compute``) also lists volume zones, and
with the admin_token plugin every service is the compute endpoint, whose ``v2.1`` document
makes the SDK build a block-storage v2 proxy that OSC refuses ("Service requires API
version '3'"). With ``block_storage_endpoint_override`` pointing here (``compute-actions dev``'s
clouds.yaml) the proxy is v3, its zone listing is a 404, and OSC shows no volume zones.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api.links import root_url

bp = Blueprint("volume_discovery", __name__)


@bp.get("/volume/v3")
@bp.get("/volume/v3/")
def show_volume_v3() -> Any:
    return jsonify({"version": {
        "id": "v3.0",
        "status": "CURRENT",
        "version": "3.0",
        "min_version": "3.0",
        "links": [{"rel": "self", "href": f"{root_url()}/volume/v3/"}],
    }})
