"""Compute microversions: parsing the request headers and stamping the response.

Semantics of nova/api/openstack/wsgi.py ``Request.set_api_version_request`` and
``microversion_parse.get_version``: the ``OpenStack-API-Version: compute X.Y`` header
wins over the legacy ``X-OpenStack-Nova-API-Version``; none means 2.1; ``latest``
means the maximum.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from flask import Response, g
from werkzeug.datastructures import Headers

from api.errors import ApiError, not_found

SERVICE_TYPE = "compute"
NEW_HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"

_FORMAT = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
# No version number has this many digits: a longer one (no leading zeros) is out of range, and
# is answered as such without int(), which refuses text past 4,300 digits.
MAX_NUMBER_DIGITS = 9


class APIVersion(NamedTuple):
    """Compares as a tuple, so views can write ``mv >= (2, 47)``."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _FORMAT.match(text)
        if match is None:
            raise ApiError(400, f"API Version String {text} is of invalid format. "
                                "Must be of format MajorNum.MinorNum.")
        major, minor = match.groups()
        if len(major) > MAX_NUMBER_DIGITS or len(minor) > MAX_NUMBER_DIGITS:
            raise unsupported(text)
        return cls(int(major), int(minor))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN_VERSION = APIVersion(2, 1)
MAX_VERSION = APIVersion(2, 104)
DEFAULT_VERSION = MIN_VERSION


def unsupported(version: str) -> ApiError:
    return ApiError(406, f"Version {version} is not supported by the API. "
                         f"Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}.")


def requested_version_string(headers: Headers) -> str | None:
    """The compute version named in the headers, or None when neither header names one."""
    new = headers.get(NEW_HEADER)
    if new:
        for item in new.split(","):
            service, _, version = item.strip().partition(" ")
            if service.lower() == SERVICE_TYPE:
                return version.strip()
    legacy = headers.get(LEGACY_HEADER)
    if legacy is not None:
        return legacy.strip()
    return None


def negotiate(headers: Headers) -> APIVersion:
    """The version to serve; 400 when malformed, 406 when outside [MIN, MAX]."""
    text = requested_version_string(headers)
    if text is None:
        return DEFAULT_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    version = APIVersion.parse(text)
    if not MIN_VERSION <= version <= MAX_VERSION:
        g.api_version = version
        raise unsupported(str(version))
    return version


def current() -> APIVersion:
    """The version of the request being served (2.1 outside microversioned routes)."""
    return g.get("api_version") or DEFAULT_VERSION


def require(minimum: tuple[int, int], maximum: tuple[int, int] | None = None) -> None:
    """A route that does not exist at this version is a 404, as in Nova."""
    mv = current()
    if mv < minimum or (maximum is not None and mv > maximum):
        raise not_found()


def stamp(response: Response, version: APIVersion) -> None:
    response.headers[NEW_HEADER] = f"{SERVICE_TYPE} {version}"
    response.headers[LEGACY_HEADER] = str(version)
    response.vary.update((NEW_HEADER, LEGACY_HEADER))  # one rewrite of the header, not one per name
