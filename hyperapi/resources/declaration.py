"""How a resource is declared: a short description that the shared machinery serves.

A :class:`Resource` names its model, its body schema, its links, its filterable and sortable
fields and what a create/update/delete must also do; :mod:`hyperapi.resources.views` turns it
into a collection service and an item service. A :class:`Relation` is a sub-collection
(``/users/7/posts``): the members of one resource scoped by a parent of another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import colander

from ..schemas.types import Mapping, QueryInteger, String

Represent = Callable[[Any, Any], dict]


@dataclass
class Resource:
    #: Plural name: the collection's key, the prefix of its route names.
    name: str
    #: Singular name, for messages.
    title: str
    model: type
    #: The body schema of POST and PUT (a colander mapping using the strict types).
    body: colander.SchemaNode
    #: ``represent(request, row) -> dict``, including ``_links``.
    represent: Represent
    #: Query-string filters: ``name -> (column name, colander type)``.
    filters: dict[str, tuple[str, colander.SchemaType]] = field(default_factory=dict)
    #: Sortable fields: ``name -> column name``.
    sorts: dict[str, str] = field(default_factory=lambda: {"id": "id"})
    default_sort: str = "id"
    #: Item methods besides GET; registrations cannot be edited, only deleted.
    item_methods: tuple[str, ...] = ("PUT", "PATCH", "DELETE")
    #: Collections whose changes change this resource's representations.
    depends: tuple[str, ...] = ()
    #: ``create(request, data) -> new instance`` (added to the session, not flushed).
    create: Callable[[Any, dict], Any] | None = None
    #: ``update(request, instance, data)``: apply validated fields.
    update: Callable[[Any, Any, dict], None] | None = None
    #: ``delete(request, instance)``: what must happen besides deleting the row.
    before_delete: Callable[[Any, Any], None] | None = None
    #: ``variant(request, row) -> str``: which fields of the row this viewer sees. It may
    #: read only ``row.id``: a 304 is decided from a row of id, version and updated_at.
    variant: Callable[[Any, Any], str] | None = None
    #: The 409 detail when a write collides with a unique constraint.
    conflict: str = "It conflicts with an existing resource."
    #: Permissions (see hyperapi.security.acl) to create members and to change one.
    create_permission: str = "create"
    edit_permission: str = "edit"
    #: The PUT body when it differs from POST's (a user's password may stay as it is).
    replace_body: colander.SchemaNode | None = None

    @property
    def collection_route(self) -> str:
        return f"{self.name}.collection"

    @property
    def item_route(self) -> str:
        return f"{self.name}.item"

    @property
    def table(self):
        return self.model.__table__

    @property
    def dependencies(self) -> tuple[str, ...]:
        return (self.name, *self.depends)

    def view_variant(self, request, row) -> str:
        return self.variant(request, row) if self.variant else ""

    def patch_body(self) -> colander.SchemaNode:
        """The PATCH body: every field optional (RFC 7396 merge patch).

        In a merge patch ``null`` removes a member; for an optional field that means its
        default, and a required field cannot be removed (see validation.merge_patch_nulls).
        """
        node = (self.replace_body or self.body).clone()
        defaults = {}
        for child in node.children:
            if child.missing is not colander.required:
                defaults[child.name] = child.missing
            child.missing = colander.drop
        node.merge_patch_defaults = defaults
        return node

    def querystring(self) -> colander.SchemaNode:
        """The collection GET query string: paging, sort and this resource's filters."""
        node = colander.SchemaNode(Mapping(), name="querystring")
        node.add(colander.SchemaNode(QueryInteger(), name="page", missing=colander.drop))
        node.add(colander.SchemaNode(QueryInteger(), name="per_page", missing=colander.drop))
        node.add(
            colander.SchemaNode(
                String(), name="sort", missing=colander.drop, validator=colander.Length(1, 200)
            )
        )
        node.add(
            colander.SchemaNode(
                String(), name="cursor", missing=colander.drop, validator=colander.Length(1, 4096)
            )
        )
        for name, (_, typ) in self.filters.items():
            node.add(colander.SchemaNode(typ, name=name, missing=colander.drop))
        return node


@dataclass
class Relation:
    """A sub-collection: members of ``member`` that belong to one ``parent``."""

    #: Route name, e.g. ``users.posts``; the route's ``{id}`` is the parent's id.
    route: str
    parent: Resource
    member: Resource
    #: ``scope(parent_id) -> where clause`` on the member's table.
    scope: Callable[[int], Any]
    #: Collections whose changes change this sub-collection.
    depends: tuple[str, ...] = ()
    #: ``total(parent_row) -> int`` when the parent keeps a counter, else COUNT(*) is used.
    total: Callable[[Any], int] | None = None

    @property
    def dependencies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.member.dependencies, *self.depends)))


def request_schema(**parts: colander.SchemaNode) -> colander.SchemaNode:
    """A request schema: a mapping whose children are named ``body``/``querystring``/``path``."""
    schema = colander.SchemaNode(colander.Mapping(), name="request")
    for name, node in parts.items():
        node = node.clone()
        node.name = name
        schema.add(node)
    return schema
