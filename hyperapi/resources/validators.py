"""Validators without the representation: what makes a 304 cheap.

A conditional GET that ends in 304 should cost as little as possible, so its decision must
not build the representation or even load the row through the ORM. This module finds the
validators (RFC 9110 §8.8) of an item or a collection from the little they are made of:

- an item: its row's ``version`` and ``updated_at`` (plus the viewer's variant and the
  media type, which need no database), taken from the row read with the request's
  authentication (hyperapi.resources.prefetch) or else read with one ``SELECT id,
  version, updated_at ... WHERE id = :id`` on the driver's cursor (hyperapi.models.reads):
  no ORM identity map, no object, no representation;
- a collection: its ``collection_states`` rows (one indexed query for every collection it
  depends on) and, for a sub-collection, its parent's version.

Why the row and not a version kept somewhere else: hyperapi runs as several processes,
and a version kept in one process's memory is not told of a write in another, so it would
answer 304 after a change: wrong, not slow. A shared cache (Redis) costs the same round
trip as the indexed SELECT and adds a second source of truth that every write, including
``counter_change``'s bulk UPDATEs, would have to keep in step. The row is the one place a
write cannot forget to update. What may skip the SELECT is a copy of the row that the
database itself keeps current: on PostgreSQL, with ``hyperapi.row_cache.enabled``, the
row read with the authentication comes from memory that triggers and NOTIFY keep in step
with every write, however it is made (hyperapi.models.changes).

The same values give the ETag and Last-Modified of full responses (representation.py), so
a 304 decided here and a 200 built later always agree.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy import bindparam, select

from ..models.collections import CollectionState
from ..models.reads import FastSelect
from .declaration import Resource
from .preconditions import FIELDS, Conditions, Validators
from .prefetch import NOT_PREFETCHED, prefetched
from .representation import collection_etag, item_etag, media_type

#: Where a request's parsed preconditions are kept, so they are parsed once.
CONDITIONS_KEY = "hyperapi.conditions"


#: The precondition fields, and their keys in the WSGI environ.
CONDITION_FIELDS = tuple((name, "HTTP_" + name.upper().replace("-", "_")) for name in FIELDS)
NO_CONDITIONS = Conditions()


def conditions(request) -> Conditions:
    """The request's preconditions, parsed once per request."""
    environ = request.environ
    parsed = environ.get(CONDITIONS_KEY)
    if parsed is None:
        # Read from the environ itself: most requests carry none of the four fields, and
        # asking WebOb's header view for each costs more than the answer is worth.
        fields = {name: environ[key] for name, key in CONDITION_FIELDS if key in environ}
        parsed = Conditions.from_headers(fields) if fields else NO_CONDITIONS
        environ[CONDITIONS_KEY] = parsed
    return parsed


def of_item(request, resource: Resource, row) -> Validators:
    """The validators of ``row``'s representation for this request.

    ``row`` may be a full row, an ORM instance or the narrow row of :func:`item`; the
    resource's ``variant`` must therefore read nothing but ``id`` (see Resource.variant).
    """
    etag = item_etag(row.version, resource.view_variant(request, row), media_type(request))
    return Validators(etag, row.updated_at)


@functools.cache
def validators_by_id(table) -> FastSelect:
    """``SELECT id, version, updated_at ... WHERE id = :id``, built once per table."""
    return FastSelect(
        select(table.c.id, table.c.version, table.c.updated_at).where(
            table.c.id == bindparam("id")
        )
    )


def item(request, resource: Resource, ident: int) -> Validators | None:
    """The validators of item ``ident`` (None when there is none), with no ORM work."""
    row = prefetched(request, resource.table, ident)
    if row is NOT_PREFETCHED:
        row = validators_by_id(resource.table).first(request.dbconnection, {"id": ident})
    return None if row is None else of_item(request, resource, row)


def lock_collections(request, names: tuple[str, ...]) -> None:
    """Hold the collections' state rows until the transaction ends (``SELECT ... FOR UPDATE``).

    A POST with ``If-Match`` compares the collection's ETag and then creates: on PostgreSQL
    a second such POST must wait here and then see the first one's version, or both would
    match the same ETag. SQLite needs no lock: a write transaction begins with
    ``BEGIN IMMEDIATE`` and so already excludes every other writer.
    """
    table = CollectionState.__table__
    statement = (
        select(table.c.name)
        .where(table.c.name.in_(sorted(names)))
        .order_by(table.c.name)
        .with_for_update()
    )
    request.dbsession.execute(statement).all()


def of_collection(
    request,
    dependencies: tuple[str, ...],
    state: dict[str, tuple[int, int, dt.datetime]],
    parent: Any = None,
) -> Validators:
    """The validators of a collection page from its state rows, before any page query.

    The ETag digests what changes the page's bytes: the version of every collection it
    depends on (bumped by each create, update and delete, so a delete changes it too), the
    parent's version for a sub-collection, the query string, the media type and the viewer
    (whose variant of each member may differ).
    """
    etag = collection_etag(
        [
            *(state[name][0] for name in dependencies),
            parent.version if parent is not None else "",
            request.query_string,
            media_type(request),
            request.authenticated_userid or "",
        ]
    )
    modified = max(
        [state[name][2] for name in dependencies]
        + ([parent.updated_at] if parent is not None else [])
    )
    return Validators(etag, modified)
