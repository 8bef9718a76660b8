"""Version discovery: ``GET /``, ``GET /v2.1[/]`` and ``GET /v2[/]``; public and not microversioned.

keystoneauth (SDK, OSC) reads ``id``, ``status``, ``version``, ``min_version`` and the
``self`` link of the v2.1 document; novaclient needs ``version`` and ``min_version``.
``GET /`` advertises v2.0 at ``/v2/`` as Nova does (``DEPRECATED`` since 32.0.0), and that URL
answers with the v2.0 document (nova versionsV21.py on the legacy v2 pipeline). The legacy v2
API itself (``/v2/servers`` and so on) is not served.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from api.links import root_url
from api.microversions import MAX_VERSION, MIN_VERSION

bp = Blueprint("versions", __name__)

DESCRIBED_BY = {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}


def v20() -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "DEPRECATED",
        "version": "",
        "min_version": "",
        "updated": "2025-07-04T12:00:00Z",
        "links": [{"rel": "self", "href": f"{root_url()}/v2/"}],
    }


def v21() -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{root_url()}/v2.1/"}],
    }


@bp.get("/")
def list_versions() -> Any:
    return jsonify({"versions": [v20(), v21()]})


@bp.get("/v2")
@bp.get("/v2/")
def show_v20() -> Any:
    doc = v20()
    doc["media-types"] = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]
    doc["links"].append(DESCRIBED_BY)
    return jsonify({"version": doc})


@bp.get("/v2.1")
@bp.get("/v2.1/")
def show_v21() -> Any:
    doc = v21()
    doc["media-types"] = [{"base": "application/json",
                           "type": "application/vnd.openstack.compute+json;version=2.1"}]
    doc["links"].append(DESCRIBED_BY)
    return jsonify({"version": doc})
