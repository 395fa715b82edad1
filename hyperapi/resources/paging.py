"""Paging: page numbers for random access, signed keyset cursors for walking.

``?page=N`` uses OFFSET and costs more the deeper it goes. Every ``next``/``prev``/``last``
link is a keyset cursor instead: "the rows after (or before) these sort-key values", which an
index answers in O(page size) at any depth. Cursors carry the sort order and filters they
were made for and are signed, so a client can follow them but not forge or edit them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import and_, or_

CURSOR_SALT = "hyperapi.paging.cursor"
AFTER, BEFORE = "a", "b"


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool = False

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.name


@dataclass
class PageRequest:
    """What a client asked of a collection, once validated."""

    per_page: int
    sort: tuple[SortKey, ...]
    filters: dict[str, Any] = field(default_factory=dict)
    page: int | None = None
    #: AFTER or BEFORE the ``boundary`` sort-key values; None for the first page.
    direction: str | None = None
    boundary: tuple | None = None
    #: Set on "last" links: the final page, read backwards from the end.
    from_end: bool = False


class InvalidCursor(ValueError):
    pass


class CursorCodec:
    """Signs and verifies cursors with the application secret."""

    def __init__(self, secret: str):
        self.serializer = URLSafeSerializer(secret, salt=CURSOR_SALT)

    def dumps(self, page: PageRequest, direction: str, boundary: tuple | None) -> str:
        payload = {
            "d": direction,
            "k": [_encode(v) for v in boundary] if boundary is not None else None,
            "s": [str(key) for key in page.sort],
            "f": {name: _encode(v) for name, v in page.filters.items()},
        }
        return self.serializer.dumps(payload)

    def loads(self, token: str) -> dict[str, Any]:
        if len(token) > 4096:
            raise InvalidCursor("cursor is too long")
        try:
            payload = self.serializer.loads(token)
        except BadSignature:
            raise InvalidCursor("cursor is not one this server issued") from None
        if not isinstance(payload, dict) or payload.get("d") not in (AFTER, BEFORE):
            raise InvalidCursor("cursor is not one this server issued")
        return payload


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return dt.datetime.fromisoformat(value["t"])
    return value


def parse_sort(text: str, allowed: tuple[str, ...]) -> tuple[SortKey, ...]:
    """``"-name,id"`` -> keys; the unique ``id`` is appended so the order is total."""
    keys: list[SortKey] = []
    for part in text.split(","):
        part = part.strip()
        descending = part.startswith("-")
        name = part[1:] if descending else part
        if name not in allowed:
            raise ValueError(f"cannot sort by {name!r}; sortable fields: {', '.join(allowed)}")
        if any(k.name == name for k in keys):
            raise ValueError(f"{name!r} is named twice")
        keys.append(SortKey(name, descending))
    if not any(k.name == "id" for k in keys):
        keys.append(SortKey("id", keys[-1].descending if keys else False))
    return tuple(keys)


def keyset_condition(columns: list, sort: tuple[SortKey, ...], boundary: tuple, direction: str):
    """Rows strictly after (or before) ``boundary`` in ``sort`` order.

    (a, b) after (x, y) is ``a > x OR (a = x AND b > y)``, with ``<`` for descending keys and
    everything flipped for BEFORE; written out rather than as a row-value comparison so that
    mixed directions work on every backend.
    """
    clauses = []
    for i, key in enumerate(sort):
        forward = (direction == AFTER) != key.descending
        column, value = columns[i], boundary[i]
        step = column > value if forward else column < value
        clauses.append(and_(*[columns[j] == boundary[j] for j in range(i)], step))
    return or_(*clauses)


def order_by(columns: list, sort: tuple[SortKey, ...], reverse: bool = False) -> list:
    return [
        (col.asc() if (key.descending == reverse) else col.desc())
        for col, key in zip(columns, sort, strict=True)
    ]
