"""Request-body validation with Nova's messages, without a JSON-Schema dependency.

Each validator is a callable ``(value, path) -> None`` that raises a 400 ApiError worded
like nova/api/validation/validators.py: ``Invalid input for field/attribute <last path
element>. Value: <value>. <jsonschema-style message>``, or the bare message at the top
level. Schemas are built from these few pieces, next to the views that use them.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from api.errors import bad_request

Path = tuple[str, ...]
Validator = Callable[[Any, Path], None]

NAME_MESSAGE = ("An invalid 'name' value was provided. The name must be: printable characters. "
                "Can not start or end with whitespace.")
BOOLEAN_STRINGS = frozenset(
    "True TRUE true 1 ON On on YES Yes yes False FALSE false 0 OFF Off off NO No no".split())
_METADATA_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
               dict: "object", list: "array", type(None): "null"}


class SchemaError(Exception):
    def __init__(self, path: Path, value: Any, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.value = value
        self.message = message

    def nova_message(self) -> str:
        if not self.path:
            return self.message
        return f"Invalid input for field/attribute {self.path[-1]}. Value: {self.value}. {self.message}"


def validate(schema: Validator, body: Any) -> None:
    """Raise a 400 with Nova's wording when ``body`` does not satisfy ``schema``."""
    try:
        schema(body, ())
    except SchemaError as exc:
        raise bad_request(exc.nova_message()) from None


def json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _type_error(value: Any, path: Path, *types: str) -> SchemaError:
    names = ", ".join(repr(t) for t in types)
    return SchemaError(path, value, f"{value!r} is not of type {names}")


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- what a validator accepts, as JSON Schema (api/openapi.py) ---------------------------
# Each building block below carries ``.json_schema`` (draft 2020-12, as OpenAPI 3.1 uses), built
# from the same arguments as its check. A validator written elsewhere without one is described
# as ``{}`` (any value) unless it calls ``described``. Where a check is finer than JSON Schema
# can say (printable names, digit strings' minimum), the schema is the closest looser one.
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
NAME_PATTERN = r"^\S(.*\S)?$"
METADATA_KEY_PATTERN = "^[a-zA-Z0-9_:. -]{1,255}$"  # _METADATA_KEY, with the hyphen last (ECMA-262 safe)


def described(validator: Validator, json_schema: dict[str, Any]) -> Validator:
    """Attach the JSON Schema of what ``validator`` accepts; returns ``validator``."""
    validator.json_schema = json_schema  # type: ignore[attr-defined]
    return validator


def json_schema_of(validator: Validator | None) -> dict[str, Any]:
    """A copy of the validator's JSON Schema (``{}``: any value, when it has none)."""
    import copy

    return copy.deepcopy(getattr(validator, "json_schema", None) or {})


def _string_schema(min_length: int, max_length: int | None, pattern: str | None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "string"}
    if min_length:
        found["minLength"] = min_length
    if max_length is not None:
        found["maxLength"] = max_length
    if pattern:
        found["pattern"] = pattern
    return found


def _integer_schema(minimum: int | None, digit_strings: bool) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        number["minimum"] = minimum
    if not digit_strings:
        return number
    digits = "^0*[1-9][0-9]*$" if minimum == 1 else "^[0-9]+$"
    return {"anyOf": [number, {"type": "string", "pattern": digits, "maxLength": MAX_INTEGER_DIGITS}]}


def _array_schema(items: Validator | None, min_items: int, max_items: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "array"}
    if items is not None:
        found["items"] = json_schema_of(items)
    if min_items:
        found["minItems"] = min_items
    if max_items is not None:
        found["maxItems"] = max_items
    return found


def _object_schema(properties: dict[str, Validator], required: tuple[str, ...], additional: bool) -> dict[str, Any]:
    found: dict[str, Any] = {"type": "object",
                             "properties": {key: json_schema_of(v) for key, v in properties.items()}}
    if required:
        found["required"] = list(required)
    if not additional:
        found["additionalProperties"] = False
    return found


def _nullable_schema(validator: Validator, json_type_name: str) -> dict[str, Any]:
    inner = json_schema_of(validator)
    inner.setdefault("type", json_type_name)
    return {"anyOf": [{"type": "null"}, inner]}


# ---- building blocks ---------------------------------------------------------------------

def any_value() -> Validator:
    def check(value: Any, path: Path) -> None:
        return None

    return described(check, {})


def null() -> Validator:
    def check(value: Any, path: Path) -> None:
        if value is not None:
            raise _type_error(value, path, "null")

    return described(check, {"type": "null"})


def string(min_length: int = 0, max_length: int | None = None, pattern: str | None = None) -> Validator:
    regex = re.compile(pattern) if pattern else None

    def check(value: Any, path: Path) -> None:
        if not isinstance(value, str):
            raise _type_error(value, path, "string")
        if len(value) < min_length:
            raise SchemaError(path, value, f"{value!r} is too short")
        if max_length is not None and len(value) > max_length:
            raise SchemaError(path, value, f"{value!r} is too long")
        if regex is not None and not regex.search(value):
            raise SchemaError(path, value, f"{value!r} does not match {pattern!r}")

    return described(check, _string_schema(min_length, max_length, pattern))


def enum(*choices: Any) -> Validator:
    def check(value: Any, path: Path) -> None:
        if not any(type(value) is type(c) and value == c for c in choices):
            raise SchemaError(path, value, f"{value!r} is not one of {list(choices)!r}")

    return described(check, {"enum": list(choices)})


def integer(minimum: int | None = None, *, digit_strings: bool = False) -> Validator:
    """A JSON integer; with ``digit_strings`` also a string of digits (Nova's non_negative/positive_integer)."""
    def check(value: Any, path: Path) -> None:
        if isinstance(value, str) and digit_strings:
            if not value:
                raise SchemaError(path, value, f"{value!r} is too short")
            if not is_digit_string(value):
                raise SchemaError(path, value, f"{value!r} does not match '^[0-9]*$'")
            number = digit_string_value(value)
            if number is None:
                raise SchemaError(path, value, f"{value!r} is too long")
        elif is_integer(value):
            number = value
        else:
            raise _type_error(value, path, *(("integer", "string") if digit_strings else ("integer",)))
        if minimum is not None and number < minimum:
            raise SchemaError(path, value, f"{value!r} is less than the minimum of {minimum}")

    return described(check, _integer_schema(minimum, digit_strings))


def boolean_like() -> Validator:
    def check(value: Any, path: Path) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, str) and value in BOOLEAN_STRINGS:
            return
        raise SchemaError(path, value, f"{value!r} is not one of {[True, False, *sorted(BOOLEAN_STRINGS)]!r}")

    return described(check, {"enum": [True, False, *sorted(BOOLEAN_STRINGS)]})


def uuid_string() -> Validator:
    def check(value: Any, path: Path) -> None:
        if not isinstance(value, str):
            raise _type_error(value, path, "string")
        if not is_uuid_like(value):
            raise SchemaError(path, value, f"{value!r} is not a 'uuid'")

    return described(check, {"type": "string", "format": "uuid", "pattern": UUID_PATTERN})


def name(max_length: int = 255) -> Validator:
    """Nova's ``name`` format: printable, no leading or trailing whitespace, 1-255 characters."""
    length = string(min_length=1, max_length=max_length)

    def check(value: Any, path: Path) -> None:
        length(value, path)
        if not value.isprintable() or value != value.strip():
            raise SchemaError((), value, NAME_MESSAGE)

    return described(check, {**json_schema_of(length), "pattern": NAME_PATTERN})


def array(items: Validator | None = None, *, min_items: int = 0, max_items: int | None = None) -> Validator:
    def check(value: Any, path: Path) -> None:
        if not isinstance(value, list):
            raise _type_error(value, path, "array")
        if len(value) < min_items:
            raise SchemaError(path, value, f"{value!r} is too short")
        if max_items is not None and len(value) > max_items:
            raise SchemaError(path, value, f"{value!r} is too long")
        if items is not None:
            for index, item in enumerate(value):
                items(item, path + (str(index),))

    return described(check, _array_schema(items, min_items, max_items))


def one_of(*validators: Validator) -> Validator:
    def check(value: Any, path: Path) -> None:
        for validator in validators:
            try:
                validator(value, path)
                return
            except SchemaError:
                continue
        raise SchemaError(path, value, f"{value!r} is not valid under any of the given schemas")

    return described(check, {"anyOf": [json_schema_of(v) for v in validators]})


def obj(properties: dict[str, Validator] | None = None, *, required: Iterable[str] = (),
        additional: bool = False) -> Validator:
    properties = properties or {}
    required = tuple(required)

    def check(value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            raise _type_error(value, path, "object")
        for key in required:
            if key not in value:
                raise SchemaError(path, value, f"{key!r} is a required property")
        unexpected = [k for k in value if k not in properties]
        if unexpected and not additional:
            listed = ", ".join(repr(k) for k in unexpected)
            verb = "was" if len(unexpected) == 1 else "were"
            raise SchemaError(path, value, f"Additional properties are not allowed ({listed} {verb} unexpected)")
        for key, validator in properties.items():
            if key in value:
                validator(value[key], path + (key,))

    return described(check, _object_schema(properties, required, additional))


def metadata() -> Validator:
    """Nova's ``parameter_types.metadata``: keys ``^[a-zA-Z0-9-_:. ]{1,255}$``, string values <= 255."""
    value_check = string(max_length=255)

    def check(value: Any, path: Path) -> None:
        if not isinstance(value, dict):
            raise _type_error(value, path, "object")
        for key, item in value.items():
            if not _METADATA_KEY.match(key):
                raise SchemaError(path, value, f"Additional properties are not allowed ({key!r} was unexpected)")
            value_check(item, path + (key,))

    return described(check, {"type": "object", "patternProperties": {METADATA_KEY_PATTERN: json_schema_of(value_check)},
                             "additionalProperties": False})


def nullable(validator: Validator, json_type_name: str) -> Validator:
    """``validator`` widened to ``[<json_type_name>, 'null']``, with jsonschema's wording."""
    def check(value: Any, path: Path) -> None:
        if value is None:
            return
        if json_type(value) != json_type_name:
            raise SchemaError(path, value, f"{value!r} is not of type '{json_type_name}', 'null'")
        validator(value, path)

    return described(check, _nullable_schema(validator, json_type_name))


def fqdn() -> Validator:
    """Nova's ``parameter_types.fqdn`` (host names in migrate and os-migrateLive)."""
    return string(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9-._]*$")


def action(key: str, value_schema: Validator) -> Validator:
    """The body of ``POST /servers/{id}/action`` for one action key."""
    return obj({key: value_schema}, required=[key])


def is_digit_string(value: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts characters ``int()`` refuses, such as '²'."""
    return re.fullmatch(r"[0-9]+", value) is not None


# Python's own default for int() of text (sys.int_info.default_max_str_digits), fixed here so the
# API's answer does not depend on PYTHONINTMAXSTRDIGITS: int() of a longer string raises ValueError.
MAX_INTEGER_DIGITS = 4300


def digit_string_value(value: str) -> int | None:
    """The integer an ASCII digit string spells, or None when it has more than MAX_INTEGER_DIGITS
    significant digits (no request needs such a number; converting one is refused or slow).

    Every int() of client text in the API goes through here, so a huge number is a 400 or 404
    chosen by the caller, never the ValueError that int() raises past 4,300 digits.
    """
    if not is_digit_string(value):
        return None
    significant = value.lstrip("0") or "0"
    if len(significant) > MAX_INTEGER_DIGITS:
        return None
    return int(significant)


def is_uuid_like(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except (ValueError, AttributeError, TypeError):
        return False
