"""Token authentication for the blueprints the app's gate (api/app.py) leaves alone.

The gate authenticates ``/v2.1`` only; the image service and the dev identity serve their own
paths and authenticate every request but a few public ones (version discovery, token issue).
One hook keeps those two alike.
"""
from __future__ import annotations

from collections.abc import Set

from flask import Blueprint, g, request

from api import auth, current


def authenticate_all_but(bp: Blueprint, public_endpoints: Set[str]) -> None:
    """Put the caller's RequestContext in ``g.context`` before every request of ``bp`` except
    those to ``public_endpoints``; a missing or bad token is the 401 of api/auth.py."""

    @bp.before_request
    def _authenticate() -> None:
        if request.endpoint in public_endpoints:
            return
        g.context = auth.context_builder(current.settings())(request.headers, g.request_id)
