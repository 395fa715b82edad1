"""The collection and item views every resource shares.

Each view validates (Cornice has already filled ``request.validated``), talks to the model,
and represents the result: GET collection with paging, filters, sort and links; POST -> 201;
GET item; PUT (full replace); PATCH (RFC 7396 merge patch); DELETE -> 204.
"""

from __future__ import annotations

from typing import Any

from pyramid.response import Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import links
from ..errors import Problem
from ..models.collections import bump, states
from . import paging
from .declaration import Relation, Resource, request_schema
from .paging import AFTER, BEFORE, PageRequest
from .representation import collection_etag, item_etag, media_type, no_content, respond
from .service import Service

#: Ids are PostgreSQL ``integer``s; a larger number names no resource.
MAX_ID = 2**31 - 1


def parse_id(value: str) -> int | None:
    if not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


def not_found(resource: Resource, ident: Any) -> Problem:
    return Problem("not-found", f"There is no {resource.title} with id {ident}.")


def path_id(request, resource: Resource, key: str = "id") -> int:
    raw = request.matchdict[key]
    ident = parse_id(raw)
    if ident is None:
        raise not_found(resource, raw)
    return ident


def load_row(request, resource: Resource, ident: int):
    table = resource.table
    row = request.dbsession.execute(select(table).where(table.c.id == ident)).first()
    if row is None:
        raise not_found(resource, ident)
    return row


def load_instance(request, resource: Resource, ident: int):
    instance = request.dbsession.get(resource.model, ident)
    if instance is None:
        raise not_found(resource, ident)
    return instance


def flush(request, resource: Resource) -> None:
    """Send pending writes; a unique-constraint collision is the client's 409."""
    try:
        request.dbsession.flush()
    except IntegrityError:
        raise Problem("conflict", resource.conflict) from None


# -- representations --------------------------------------------------------------------


def item_headers(request, resource: Resource, row) -> tuple[str, Any]:
    etag = item_etag(row.version, resource.view_variant(request, row), media_type(request))
    return etag, row.updated_at


def represent_item(request, resource: Resource, row, *, status: int = 200, **headers):
    etag, modified = item_headers(request, resource, row)
    return respond(
        request,
        resource.represent(request, row),
        status=status,
        etag=etag,
        last_modified=modified,
        headers=headers or None,
    )


# -- collections ------------------------------------------------------------------------


def invalid(name: str, description: str, detail: str | None = None) -> Problem:
    return Problem(
        "validation",
        detail or f"The query parameter {name!r} {description}.",
        errors=[{"location": "querystring", "name": name, "description": description}],
    )


def page_request(request, resource: Resource) -> PageRequest:
    """Interpret the validated query string of a collection GET."""
    settings = request.registry.settings
    query = request.validated.get("querystring", {})
    per_page = query.get("per_page", settings["hyperapi.page_size"])
    maximum = settings["hyperapi.max_page_size"]
    if not 1 <= per_page <= maximum:
        raise invalid("per_page", f"must be between 1 and {maximum}")
    allowed = tuple(resource.sorts)
    if "cursor" in query:
        extra = sorted(set(query) - {"cursor", "per_page"})
        if extra:
            raise invalid(
                extra[0], "cannot be combined with a cursor (the cursor carries it already)"
            )
        try:
            payload = request.registry.cursor_codec.loads(query["cursor"])
            sort = paging.parse_sort(",".join(payload["s"]), allowed)
            filters = {name: paging.decode_value(v) for name, v in payload["f"].items()}
            if set(filters) - set(resource.filters):
                raise paging.InvalidCursor("cursor filters on unknown fields")
            keys = payload["k"]
            boundary = None if keys is None else tuple(paging.decode_value(v) for v in keys)
            if boundary is not None and len(boundary) != len(sort):
                raise paging.InvalidCursor("cursor does not match its sort order")
        except (paging.InvalidCursor, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise invalid("cursor", "is not a valid cursor", str(exc)) from None
        return PageRequest(
            per_page=per_page,
            sort=sort,
            filters=filters,
            direction=payload["d"],
            boundary=boundary,
            from_end=boundary is None,
        )
    page = query.get("page")
    if page is not None and page < 1:
        raise invalid("page", "must be 1 or more")
    try:
        sort = paging.parse_sort(query.get("sort", resource.default_sort), allowed)
    except ValueError as exc:
        raise invalid("sort", str(exc)) from None
    filters = {name: query[name] for name in resource.filters if name in query}
    return PageRequest(per_page=per_page, sort=sort, filters=filters, page=page)


def collection_get(request, resource: Resource, relation: Relation | None = None) -> Response:
    page = page_request(request, resource)
    session = request.dbsession
    table = resource.table
    where = []
    parent = None
    if relation is not None:
        parent_id = path_id(request, relation.parent)
        parent = load_row(request, relation.parent, parent_id)
        where.append(relation.scope(parent_id))
    for name, value in page.filters.items():
        where.append(table.c[resource.filters[name][0]] == value)

    dependencies = relation.dependencies if relation else resource.dependencies
    state = states(session, dependencies)
    media = media_type(request)
    etag = collection_etag(
        [
            *(state[name][0] for name in dependencies),
            parent.version if parent is not None else "",
            request.query_string,
            media,
            request.authenticated_userid or "",
        ]
    )
    modified = max(
        [state[name][2] for name in dependencies]
        + ([parent.updated_at] if parent is not None else [])
    )

    # The page itself: per_page + 1 rows tell whether there is more beyond it.
    columns = [table.c[resource.sorts[key.name]] for key in page.sort]
    backwards = page.direction == BEFORE
    stmt = select(table).where(*where)
    if page.boundary is not None:
        stmt = stmt.where(
            paging.keyset_condition(columns, page.sort, page.boundary, page.direction)
        )
    stmt = stmt.order_by(*paging.order_by(columns, page.sort, reverse=backwards))
    if page.page:
        stmt = stmt.offset((page.page - 1) * page.per_page)
    rows = session.execute(stmt.limit(page.per_page + 1)).all()
    more = len(rows) > page.per_page
    rows = rows[: page.per_page]
    if backwards:
        rows.reverse()

    if not page.filters and relation is None:
        total = state[resource.name][1]
    elif not page.filters and relation is not None and relation.total is not None:
        total = relation.total(parent)
    else:
        total = session.execute(select(func.count()).select_from(table).where(*where)).scalar()

    items = []
    for row in rows:
        item = resource.represent(request, row)
        item["_etag"] = item_etag(row.version, resource.view_variant(request, row), media)
        items.append(item)

    if backwards:
        has_next, has_prev = not page.from_end, more
    else:
        has_next, has_prev = more, page.boundary is not None or bool(page.page and page.page > 1)
    nav = navigation(request, resource, relation, page, rows, has_next, has_prev)
    meta: dict[str, Any] = {"total": total, "per_page": page.per_page}
    if page.page:
        meta["page"] = page.page
    body = {"items": items, "_meta": meta, "_links": nav}
    return respond(
        request, body, etag=etag, last_modified=modified, headers={"Link": links.link_header(nav)}
    )


def navigation(request, resource, relation, page: PageRequest, rows, has_next, has_prev):
    route = relation.route if relation else resource.collection_route
    route_kw = {"id": request.matchdict["id"]} if relation else {}
    codec = request.registry.cursor_codec

    def at(**query):
        query["per_page"] = page.per_page
        return links.link(request, route, _query=query, **route_kw)

    def keys(row):
        return tuple(getattr(row, resource.sorts[key.name]) for key in page.sort)

    start: dict[str, Any] = {}
    if [str(k) for k in page.sort] != [
        str(k) for k in paging.parse_sort(resource.default_sort, tuple(resource.sorts))
    ]:
        start["sort"] = ",".join(str(k) for k in page.sort)
    start.update({name: str(value) for name, value in page.filters.items()})

    nav = {"self": {"href": request.url}, "first": at(**start)}
    if has_prev and rows:
        nav["prev"] = at(cursor=codec.dumps(page, BEFORE, keys(rows[0])))
    if has_next and rows:
        nav["next"] = at(cursor=codec.dumps(page, AFTER, keys(rows[-1])))
    nav["last"] = at(cursor=codec.dumps(page, BEFORE, None))
    if relation is not None:
        nav["up"] = links.link(request, relation.parent.item_route, id=request.matchdict["id"])
    return nav


def collection_post(request, resource: Resource) -> Response:
    data = request.validated["body"]
    instance = resource.create(request, data) if resource.create else resource.model(**data)
    request.dbsession.add(instance)
    flush(request, resource)
    bump(request.dbsession, resource.name, +1)
    location = links.href(request, resource.item_route, id=instance.id)
    return represent_item(request, resource, instance, status=201, Location=location)


# -- items ------------------------------------------------------------------------------


def item_get(request, resource: Resource) -> Response:
    row = load_row(request, resource, path_id(request, resource))
    return represent_item(request, resource, row)


def item_write(request, resource: Resource) -> Response:
    """PUT (every writable field, absent optional ones reset) or PATCH (only those sent)."""
    instance = load_instance(request, resource, path_id(request, resource))
    data = request.validated["body"]
    if resource.update:
        resource.update(request, instance, data)
    else:
        for name, value in data.items():
            setattr(instance, name, value)
    flush(request, resource)
    bump(request.dbsession, resource.name)
    return represent_item(request, resource, instance)


def item_delete(request, resource: Resource) -> Response:
    instance = load_instance(request, resource, path_id(request, resource))
    if resource.before_delete:
        resource.before_delete(request, instance)
    request.dbsession.delete(instance)
    flush(request, resource)
    bump(request.dbsession, resource.name, -1)
    return no_content(request)


# -- services ---------------------------------------------------------------------------


def _bind(view, *args):
    def bound(request):
        return view(request, *args)

    bound.__name__ = bound.__qualname__ = f"{view.__name__}[{args[0].name}]"
    return bound


def services(resource: Resource) -> list[Service]:
    """The collection and item services of ``resource``."""
    collection = Service(
        name=resource.collection_route,
        pyramid_route=resource.collection_route,
        description=f"The collection of {resource.name}.",
    )
    collection.add_view(
        "GET",
        _bind(collection_get, resource),
        schema=request_schema(querystring=resource.querystring()),
    )
    collection.add_view(
        "POST",
        _bind(collection_post, resource),
        schema=request_schema(body=resource.body),
        permission=resource.create_permission,
    )
    item = Service(
        name=resource.item_route,
        pyramid_route=resource.item_route,
        description=f"One of the {resource.name}.",
    )
    item.add_view("GET", _bind(item_get, resource))
    if "PUT" in resource.item_methods:
        body = resource.replace_body or resource.body
        item.add_view(
            "PUT",
            _bind(item_write, resource),
            schema=request_schema(body=body),
            permission=resource.edit_permission,
        )
    if "PATCH" in resource.item_methods:
        item.add_view(
            "PATCH",
            _bind(item_write, resource),
            schema=request_schema(body=resource.patch_body()),
            permission=resource.edit_permission,
        )
    if "DELETE" in resource.item_methods:
        item.add_view("DELETE", _bind(item_delete, resource), permission=resource.edit_permission)
    return [collection, item]


def relation_service(relation: Relation) -> Service:
    service = Service(
        name=relation.route,
        pyramid_route=relation.route,
        description=f"The {relation.member.name} of one of the {relation.parent.name}.",
    )
    service.add_view(
        "GET",
        _bind(collection_get, relation.member, relation),
        schema=request_schema(querystring=relation.member.querystring()),
    )
    return service
