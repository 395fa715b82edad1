"""Strict colander types: JSON values are taken as they are, never coerced.

colander's own types are lenient in ways an API must not be: ``Int`` accepts ``true`` and
``"5"``, ``Boolean`` accepts ``"no"`` (as True), ``Mapping`` drops unknown keys. These accept
exactly one JSON type each, reject what a database could not store (NUL characters, lone
surrogates, integers outside 64 bits) and name every unknown or read-only key.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import colander

INT64_MAX = 2**63 - 1
#: Ids are PostgreSQL ``integer``s: a larger number names no row, and must not reach a
#: query (PostgreSQL refuses it with an error, which would be a 500).
MAX_ID = 2**31 - 1


def parse_id(value: str) -> int | None:
    """The id in a path segment, or None when it names no possible row."""
    # ASCII digits only: str.isdigit() and the routes' \d also take U+0661 (Arabic-Indic
    # one), which int() reads as 1: /users/%D9%A1 would be a second name of /users/1.
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


def format_datetime(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the microsecond (the API's one timestamp format)."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class String(colander.String):
    """A JSON string: not a number, not a boolean, no NUL, valid UTF-8."""

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, str):
            raise colander.Invalid(node, "must be a string")
        if "\x00" in cstruct:
            raise colander.Invalid(node, "must not contain NUL characters")
        try:
            cstruct.encode("utf-8")
        except UnicodeEncodeError:
            raise colander.Invalid(node, "must be valid Unicode (no lone surrogates)") from None
        return cstruct


class Integer(colander.Number):
    """A JSON integer: ``true`` is not 1 and ``"5"`` is not 5."""

    num = int

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if isinstance(cstruct, bool) or not isinstance(cstruct, int):
            raise colander.Invalid(node, "must be an integer")
        if not -INT64_MAX <= cstruct <= INT64_MAX:
            raise colander.Invalid(node, "is out of range")
        return cstruct


class Boolean(colander.Boolean):
    """A JSON boolean: ``"yes"``, ``"no"`` and ``1`` are not booleans."""

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, bool):
            raise colander.Invalid(node, "must be a boolean (true or false)")
        return cstruct


class DateTime(colander.SchemaType):
    """An ISO 8601 timestamp with an explicit offset, returned as an aware UTC datetime."""

    def serialize(self, node, appstruct):
        if appstruct is colander.null or appstruct is None:
            return colander.null
        return format_datetime(appstruct)

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, str) or len(cstruct) > 40:
            raise colander.Invalid(node, "must be an ISO 8601 timestamp string")
        try:
            value = dt.datetime.fromisoformat(cstruct)
        except ValueError:
            raise colander.Invalid(node, "must be an ISO 8601 timestamp") from None
        if value.tzinfo is None:
            raise colander.Invalid(node, "must say its time zone (for UTC, end with Z)")
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise colander.Invalid(node, "is out of range") from None


class Reference(colander.SchemaType):
    """A reference to another resource: its URL, or its id.

    ``"http://host/api/v1/students/3"``, ``"/api/v1/students/3"`` and ``3`` all name student 3;
    a URL of another kind of resource does not.
    """

    def __init__(self, collection: str):
        self.collection = collection
        # [0-9], not \d: \d also matches other scripts' digits, which int() accepts.
        self.pattern = re.compile(rf"(?:^|/)api/v1/{re.escape(collection)}/([0-9]{{1,18}})/?$")

    def serialize(self, node, appstruct):
        return colander.null if appstruct is colander.null else appstruct

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if isinstance(cstruct, str) and cstruct.isascii() and cstruct.isdigit():
            cstruct = int(cstruct) if len(cstruct) <= 18 else 0  # query strings say "7"
        if isinstance(cstruct, str) and len(cstruct) <= 2048:
            path = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*", "", cstruct).split("?")[0]
            match = self.pattern.search(path)
            if match:
                cstruct = int(match.group(1))
        if isinstance(cstruct, int) and not isinstance(cstruct, bool):
            if cstruct < 1 or cstruct > MAX_ID:
                raise colander.Invalid(node, "is not an existing id")
            return cstruct
        raise colander.Invalid(
            node, f"must be the URL of one of the {self.collection} (or its id)"
        )


class Mapping(colander.Mapping):
    """A JSON object whose every key is known and writable.

    Each unknown key gets its own error, and keys that are part of the representation but
    not writable (``id``, counters, ``_links``...) say so, instead of colander's single
    "Unrecognized keys in mapping".
    """

    def __init__(self, read_only: Iterable[str] = ()):
        super().__init__(unknown="raise")
        self.read_only = frozenset(read_only)

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, dict):
            raise colander.Invalid(node, "must be a JSON object")
        known = {child.name for child in node.children}
        extra = [key for key in cstruct if key not in known]
        error = None
        try:
            result = super().deserialize(node, {k: v for k, v in cstruct.items() if k in known})
        except colander.Invalid as exc:
            error, result = exc, None
        if extra:
            error = error or colander.Invalid(node)
            for key in extra:
                message = "is read-only" if key in self.read_only else "is not a known field"
                error.add(colander.Invalid(_named(str(key)), message))
        if error is not None:
            raise error
        return result


def _named(name: str) -> colander.SchemaNode:
    return colander.SchemaNode(colander.String(), name=name)


def errors_from_invalid(exc: colander.Invalid, location: str) -> list[dict[str, str]]:
    """Turn colander's error tree into the API's ``errors`` list."""
    errors = []
    for path, message in exc.asdict().items():
        # asdict() names nested nodes "parent.child"; the top node is the location itself.
        name = path.split(".", 1)[1] if "." in path else ""
        errors.append({"location": location, "name": name, "description": message})
    return errors


def positive_id(node: colander.SchemaNode, value: Any) -> None:
    if value < 1:
        raise colander.Invalid(node, "must be positive")


class QueryInteger(colander.SchemaType):
    """A non-negative integer written in a query string: digits only, no sign, no spaces."""

    def serialize(self, node, appstruct):
        return colander.null if appstruct is colander.null else str(appstruct)

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if not isinstance(cstruct, str) or not cstruct.isascii() or not cstruct.isdigit():
            raise colander.Invalid(node, "must be a whole number written in digits")
        if len(cstruct) > 18:
            raise colander.Invalid(node, "is out of range")
        return int(cstruct)
