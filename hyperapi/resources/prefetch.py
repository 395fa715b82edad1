"""An item GET's row, read in the statement that authenticates the request.

An authenticated GET or HEAD of an item needed two statements: the credentials' user (and,
for a Bearer token, its revocation), then the item's row, or for a 304 its validators. On
PostgreSQL each is a round trip to the server, and the two were most of the request's
time. The item is known from the path alone, so every scheme that reads its user from the
database (hyperapi.security.identity.read_user) asks :class:`ItemPrefetch` for it and reads
both at once: the item's table LEFT JOINed on its id, so that a missing item reads as NULLs
beside its user (then 404, as before), and no user means no row at all (then 401, as
before). The item's row is kept on the request, where :func:`prefetched` gives it to the
view, to a post's ACL (its author) and to the conditional tween's 304
(hyperapi.resources.views.not_modified_before_view); it is the same row the view would
have read, only in the same snapshot as the authentication. The whole row is read even
when a 304 will need only its version: the bytes travel in the round trip that is made
anyway, and an If-None-Match that does not match needs the row after all.

With the row cache on (PostgreSQL, hyperapi.models.changes), the pair read here, the user
row and the item row, is remembered by hyperapi.security.identity.read_user, and a read
that finds it remembered sends no statement at all.

Nothing else takes this path: other methods, other routes, and schemes that read no user
row all read as they did, and the view reads whatever was not prefetched.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Any

from pyramid.interfaces import IDefaultPermission, IRootFactory, IRoutesMapper
from sqlalchemy import Table, bindparam
from sqlalchemy.sql import Select

from ..models.reads import FastSelect
from ..schemas.types import parse_id
from .preconditions import READS

#: Where the item read with the identity is kept (a :class:`Prefetched`).
REQUEST_ATTRIBUTE = "hyperapi_prefetched_item"
#: What :func:`prefetched` returns when the item was not read with the identity.
NOT_PREFETCHED = object()


class _Joined:
    """``base`` (a SELECT of one row by primary key) with ``table``'s row by id beside it."""

    def __init__(self, base: Select, table: Table):
        item = table.alias("prefetched_item")
        self.width = len(base.selected_columns)
        self.base_row = namedtuple("Row", [column.key for column in base.selected_columns])
        self.item_row = namedtuple("Row", [column.key for column in table.columns])
        froms = base.get_final_froms()
        statement = base.add_columns(
            *(column.label(f"prefetched_{column.key}") for column in item.columns)
        ).select_from(froms[0].outerjoin(item, item.c.id == bindparam("prefetched_id")))
        self.select = FastSelect(statement)

    def first(self, connection, params: dict[str, Any]):
        values = self.select.first_values(connection, params)
        if values is None:
            return None, None
        base = self.base_row._make(values[: self.width])
        item = values[self.width :]
        # The LEFT JOIN found no item: every column is NULL, the id included.
        return base, (None if item[0] is None else self.item_row._make(item))


@dataclass(frozen=True)
class Target:
    """The item a GET/HEAD reads: its route, the route's match, resource, table and id."""

    route: Any
    matchdict: dict[str, str]
    resource: Any
    ident: int

    @property
    def table(self) -> Table:
        return self.resource.table


@dataclass(frozen=True)
class Prefetched:
    target: Target
    #: The item's row; None when there is no such item.
    row: Any


class ItemPrefetch:
    """Which item a request reads, and the statements that read it with a user row."""

    def __init__(self, resources: dict[str, Any]):
        #: Item route name -> its resource (the resources' item services).
        self.resources = resources
        self.routes: list[tuple[Any, Any]] | None = None
        self.joined: dict[tuple[Select, Table], _Joined] = {}
        # Known once the configuration is committed (see _settle).
        self.root_factory: Any = None
        self.permission: str | None = None

    def _settle(self, registry) -> None:
        """What the router and the views use, looked up once: routes, root factory, the
        default permission (every item GET view has it)."""
        if self.routes is None:
            mapper = registry.getUtility(IRoutesMapper)
            self.root_factory = registry.getUtility(IRootFactory)
            self.permission = registry.queryUtility(IDefaultPermission)
            self.routes = [(mapper.get_route(name), r) for name, r in self.resources.items()]

    def context(self, request, target: Target):
        """The context the router would make for ``target``'s route (its ACL's owner)."""
        self._settle(request.registry)
        # As the router sets them: an ACL may read the matchdict.
        request.matchdict, request.matched_route = target.matchdict, target.route
        return (target.route.factory or self.root_factory)(request)

    def target(self, request) -> Target | None:
        """The item this GET/HEAD reads; None for any other request."""
        if request.method not in READS:
            return None
        route = request.matched_route
        if route is not None:
            resource = self.resources.get(route.name)
            matched = request.matchdict if resource is not None else None
        else:
            # Asked before routing (the rate-limit tween authenticates first): match the
            # item routes as the router will.
            resource = matched = None
            path = request.path_info
            self._settle(request.registry)
            for candidate, candidate_resource in self.routes:
                matched = candidate.match(path)
                if matched is not None:
                    route, resource = candidate, candidate_resource
                    break
        if not matched:
            return None
        ident = parse_id(matched.get("id", ""))
        return None if ident is None else Target(route, matched, resource, ident)

    def read(self, request, base: Select, params: dict[str, Any], target: Target):
        """``base``'s row and ``target``'s item, read in one statement; the item is kept on
        the request when there is a ``base`` row."""
        key = (base, target.table)
        joined = self.joined.get(key)
        if joined is None:
            joined = self.joined[key] = _Joined(base, target.table)
        row, item = joined.first(request.dbconnection, {**params, "prefetched_id": target.ident})
        if row is not None:
            keep(request, target, item)
        return row, item


def keep(request, target: Target, row) -> None:
    """Keep ``row`` (None: there is no such item) as ``target``'s, read with the identity."""
    setattr(request, REQUEST_ATTRIBUTE, Prefetched(target, row))


def prefetched(request, table: Table, ident: int):
    """The row of ``table``'s item ``ident`` read with the identity (None: there is none),
    or :data:`NOT_PREFETCHED`."""
    kept = getattr(request, REQUEST_ATTRIBUTE, None)
    if kept is None or kept.target.table is not table or kept.target.ident != ident:
        return NOT_PREFETCHED
    return kept.row
