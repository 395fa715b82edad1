"""Request validation: strict JSON bodies and colander request schemas.

This is the one Cornice validator of hyperapi. A request schema is a colander mapping
with up to three children named for the request part they check: ``body``, ``querystring``
and ``path``. Each part is deserialized on its own and every error lands in
``request.errors`` with its location, so a client learns all that is wrong at once.

The JSON parser is stricter than ``request.json_body``: it refuses duplicate keys,
``NaN``/``Infinity``, invalid UTF-8 and absurd nesting, none of which a client means.
"""

from __future__ import annotations

import json
from typing import Any

import colander

from ..errors import Problem
from ..schemas.types import errors_from_invalid

JSON_TYPES = frozenset(("application/json",))
MERGE_PATCH = "application/merge-patch+json"
BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
MAX_DEPTH = 32


class _BadJSON(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _BadJSON(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise _BadJSON(f"{name} is not valid JSON")


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def loads(raw: bytes) -> Any:
    """Parse a request body as strict JSON (RFC 8259), or raise ``ValueError``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not valid UTF-8 (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        raise ValueError("body must not start with a byte order mark")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _BadJSON as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError(f"body is nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if _depth(value) > MAX_DEPTH:
        raise ValueError(f"body is nested deeper than {MAX_DEPTH} levels")
    return value


def media_type(request) -> str:
    return (request.content_type or "").lower()


def check_content_type(request) -> None:
    """415 unless the body is JSON (RFC 7396 merge patch also for PATCH), in UTF-8."""
    mtype = media_type(request)
    allowed = JSON_TYPES | ({MERGE_PATCH} if request.method == "PATCH" else set())
    if mtype not in allowed:
        offered = " or ".join(sorted(allowed))
        raise Problem(
            "unsupported-media-type",
            f"Request bodies must be sent as {offered}, not {mtype or 'no Content-Type'}.",
            headers={
                "Accept-Patch" if request.method == "PATCH" else "Accept-Post": ", ".join(
                    sorted(allowed)
                )
            },
        )
    charset = request.headers.get("Content-Type", "").lower().partition("charset=")[2]
    if charset and charset.strip('" ;') not in ("utf-8", "utf8"):
        raise Problem("unsupported-media-type", "JSON bodies must be encoded in UTF-8.")


def read_body(request) -> Any:
    """The request's JSON body, checked for size, media type and syntax."""
    limit = request.registry.settings["hyperapi.max_body_size"]
    length = request.content_length
    if length is not None and length > limit:
        raise Problem("payload-too-large", f"Request bodies are limited to {limit} bytes.")
    raw = request.body_file.read(limit + 1) if length is None else request.body
    if len(raw) > limit:
        raise Problem("payload-too-large", f"Request bodies are limited to {limit} bytes.")
    if not raw:
        if request.content_type:
            check_content_type(request)
        return colander.null
    check_content_type(request)
    try:
        return loads(raw)
    except ValueError as exc:
        raise Problem(
            "validation",
            "The request body is not valid JSON.",
            errors=[{"location": "body", "name": "", "description": str(exc)}],
        ) from None


def querystring(request) -> dict[str, str]:
    """The query string as a plain dict; a parameter given twice is an error."""
    try:
        items = list(request.GET.items())
    except UnicodeDecodeError:
        raise Problem(
            "validation",
            "The query string is not valid UTF-8.",
            errors=[{"location": "querystring", "name": "", "description": "invalid UTF-8"}],
        ) from None
    result: dict[str, str] = {}
    repeated = []
    for key, value in items:
        if key in result:
            repeated.append(key)
        result[key] = value
    if repeated:
        raise Problem(
            "validation",
            "A query parameter was given more than once.",
            errors=[
                {"location": "querystring", "name": key, "description": "is given more than once"}
                for key in sorted(set(repeated))
            ],
        )
    return result


def merge_patch_nulls(
    body: dict[str, Any], node: colander.SchemaNode, defaults: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """RFC 7396: ``null`` removes a member; optional fields fall back to their default."""
    known = {child.name for child in node.children}
    result, errors = {}, []
    for key, value in body.items():
        if value is None and key in known:
            if key in defaults:
                if defaults[key] is not colander.drop:  # a write-only field: nothing to do
                    result[key] = defaults[key]
            else:
                errors.append((key, "is required and cannot be removed (set to null)"))
        else:
            result[key] = value
    return result, errors


def validate(request, **kwargs) -> None:
    """Cornice validator: deserialize each part of ``kwargs['schema']`` into request.validated."""
    schema = kwargs.get("schema")
    if schema is None:
        return
    if callable(schema) and not isinstance(schema, colander.SchemaNode):
        schema = schema(request)
    for part in schema.children:
        if part.name == "body":
            cstruct = read_body(request)
            defaults = getattr(part, "merge_patch_defaults", None)
            if defaults is not None and isinstance(cstruct, dict):
                cstruct, null_errors = merge_patch_nulls(cstruct, part, defaults)
                for name, description in null_errors:
                    request.errors.add("body", name, description)
        elif part.name == "querystring":
            cstruct = querystring(request)
        elif part.name == "path":
            cstruct = dict(request.matchdict or {})
        else:  # pragma: no cover - a programming error in a schema
            raise ValueError(f"unknown request part {part.name!r}")
        try:
            request.validated[part.name] = part.deserialize(cstruct)
        except colander.Invalid as exc:
            for error in errors_from_invalid(exc, part.name):
                request.errors.add(error["location"], error["name"], error["description"])
