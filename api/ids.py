"""Ids in paths, checked with Nova's 400s (``utils.validate_integer``, ``uuidutils.is_uuid_like``)."""
from __future__ import annotations

from api.errors import bad_request
from api.schemas import is_uuid_like


def integer_id(value: str, name: str = "id") -> int:
    """An integer id (aggregates; services below 2.53): anything else is ``Invalid input received``."""
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"Invalid input received: {name} must be an integer") from None


def uuid_id(value: str) -> str:
    """A uuid id (services and hypervisors from 2.53), lower case; anything else is ``Invalid uuid``."""
    if not is_uuid_like(value):
        raise bad_request(f"Invalid uuid {value}")
    return value.lower()
