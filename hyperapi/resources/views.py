"""The collection and item views every resource shares.

Each view validates (Cornice has already filled ``request.validated``), talks to the model,
and represents the result: GET collection with paging, filters, sort and links; POST -> 201;
GET item; PUT (full replace); PATCH (RFC 7396 merge patch); DELETE -> 204.

Conditional requests (RFC 9110 §13) meet these views twice. Reads: when a GET/HEAD carries
preconditions, the view first looks up the validators alone (hyperapi.resources.validators)
and answers 304 before loading or representing anything; whatever it does not answer, the
conditional tween evaluates on the finished response. Writes: the preconditions of PUT,
PATCH and DELETE are checked by a Cornice validator that runs before the body is even read
(RFC 9110 §13.2.1: before the request content is processed), against the ORM instance the
write then changes; the write is an ``UPDATE ... WHERE version = :read`` (the models'
``version_id_col``), so a concurrent writer that got in between makes it match no row,
and the replay (pyramid_retry) answers 412.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pyramid.httpexceptions import HTTPException
from pyramid.response import Response
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from .. import links
from ..errors import Problem
from ..models.collections import bump, states
from ..models.meta import utcnow
from ..models.reads import FastSelect
from ..schemas.types import MAX_ID, parse_id
from . import paging, validation
from . import validators as current
from .declaration import Relation, Resource, request_schema
from .paging import AFTER, BEFORE, PageRequest
from .preconditions import Outcome, Validators, evaluate
from .prefetch import NOT_PREFETCHED, REQUEST_ATTRIBUTE, prefetched
from .representation import (
    http_date,
    item_etag,
    media_type,
    no_content,
    not_modified,
    respond,
)
from .service import ACCEPT as SERVICE_ACCEPT
from .service import Service


def not_found(resource: Resource, ident: Any) -> Problem:
    return Problem("not-found", f"There is no {resource.title} with id {ident}.")


def path_id(request, resource: Resource, key: str = "id") -> int:
    raw = request.matchdict[key]
    ident = parse_id(raw)
    if ident is None:
        raise not_found(resource, raw)
    return ident


@functools.cache
def row_by_id(table) -> FastSelect:
    """``SELECT * FROM table WHERE id = :id``, built once per table (see load_row)."""
    return FastSelect(select(table).where(table.c.id == bindparam("id")))


def load_row(request, resource: Resource, ident: int):
    """The row, as a Core row on the request's connection: reads need no ORM object.

    The statement is built once: constructing a select costs more than executing one that
    SQLAlchemy has already compiled, and the ORM session's execute() path costs more again.
    """
    row = prefetched(request, resource.table, ident)
    if row is NOT_PREFETCHED:
        row = row_by_id(resource.table).first(request.dbconnection, {"id": ident})
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


def represent_item(request, resource: Resource, row, *, status: int = 200, **headers):
    found = current.of_item(request, resource, row)
    return respond(
        request,
        resource.represent(request, row),
        status=status,
        etag=found.etag,
        last_modified=found.last_modified,
        headers=headers or None,
    )


# -- preconditions ----------------------------------------------------------------------


def early_not_modified(request, found: Validators) -> Response | None:
    """The 304 of a GET/HEAD, decided from the validators alone; None to go on.

    Only the 304 is answered here: a false If-Match (412) needs the current representation
    in its body, so it is left to the conditional tween, which has the full response.
    """
    conditions = current.conditions(request)
    if conditions and evaluate(request.method, conditions, found) is Outcome.NOT_MODIFIED:
        return not_modified(found.etag, found.last_modified)
    return None


def not_modified_before_view(request) -> Response | None:
    """The 304 of an item GET/HEAD whose row came with its authentication; None to go on.

    The conditional tween asks this before the router runs: when the item's row came with
    the authentication (hyperapi.resources.prefetch), its validators are at hand, and the
    router, the view lookup, Cornice and the view would only reach the same 304 the long
    way. The answer is :func:`early_not_modified`'s, the view's own, and it is given only
    when nothing the view does could answer otherwise: the item exists, the request has
    preconditions, no query string and no body, an ``Accept`` the service can satisfy
    (else Cornice's 406), and the route's context grants the view permission to this
    identity (else the view's 401 or 403). Every other request goes to the view.
    """
    if not current.conditions(request):
        return None
    if request.query_string or request.content_length or "Transfer-Encoding" in request.headers:
        return None
    if not request.accept.acceptable_offers(SERVICE_ACCEPT):
        return None
    kept = getattr(request, REQUEST_ATTRIBUTE, None)
    prefetch = request.registry.item_prefetch
    if (
        kept is None
        and "HTTP_AUTHORIZATION" in request.environ
        and prefetch.target(request) is not None
    ):
        # An item's view authenticates anyway: do it now, as the rate limiter does first
        # when it is on, so that the item is read with the credentials. A refusal (the
        # failed-login guard) is the view's to give.
        try:
            request.identity  # noqa: B018 - asked for its effect, the prefetch
        except HTTPException:
            return None
        kept = getattr(request, REQUEST_ATTRIBUTE, None)
    if kept is None or kept.row is None:
        return None
    target = kept.target
    context = prefetch.context(request, target)
    if prefetch.permission is not None and not request.has_permission(
        prefetch.permission, context
    ):
        return None
    return early_not_modified(request, current.of_item(request, target.resource, kept.row))


def validator_headers(found: Validators) -> dict[str, str]:
    headers = {}
    if found.etag is not None:
        headers["ETag"] = found.etag
    if found.last_modified is not None:
        headers["Last-Modified"] = http_date(found.last_modified)
    return headers


def check_write(
    request,
    found: Validators | None,
    *,
    required: bool,
    body: Callable[[], Any] | None = None,
) -> None:
    """Evaluate a write's preconditions before anything changes; raise 428 or 412.

    ``found`` is None when the target has no current representation. ``required`` says
    whether ``hyperapi.require_if_match`` applies (a write to something that exists).
    ``body()`` gives the current representation that a 412 carries.
    """
    conditions = current.conditions(request)
    settings = request.registry.settings
    if required and conditions.if_match is None and settings["hyperapi.require_if_match"]:
        raise Problem(
            "precondition-required",
            "This server only accepts conditional writes, so that no change is lost: GET "
            "the resource, then repeat this request with its ETag in If-Match. A 412 "
            "answer means someone changed it since; GET it again and reapply the change.",
            required="If-Match",
        )
    if not conditions or evaluate(request.method, conditions, found) is Outcome.PROCEED:
        return
    members = {}
    if found is not None and body is not None:
        members["current"] = body()
    raise Problem(
        "precondition-failed",
        "A precondition of this request does not hold: the resource has changed since the "
        "client saw it (its current ETag is in the ETag header), or If-None-Match matched.",
        headers=validator_headers(found) if found is not None else None,
        **members,
    )


def item_preconditions(resource: Resource):
    """The Cornice validator that checks an item write's preconditions, 404 first.

    PUT never creates an item (ids are given by POST), so ``If-None-Match: *`` on a PUT
    cannot succeed: 412 when the item exists, 404 when it does not (RFC 9110 §13.2.1: the
    unconditional answer would be 404, so the precondition is ignored).
    """

    def check(request, **kwargs) -> None:
        instance = load_instance(request, resource, path_id(request, resource))
        # The write must change this very object: the session's identity map holds it only
        # weakly, and a reload could bring a version other than the one checked.
        request.validated["instance"] = instance
        check_write(
            request,
            current.of_item(request, resource, instance),
            required=True,
            body=lambda: resource.represent(request, instance),
        )

    return check


def lost_write_race(exc, request) -> Problem:
    """A versioned UPDATE/DELETE matched no row on the last attempt pyramid_retry allowed."""
    return Problem(
        "conflict",
        "The resource was changed by another request while this one was writing it; "
        "GET it again and retry.",
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
    # No collection holds more rows than there are ids: a larger page number is a mistake,
    # and its OFFSET would overflow the database's 64-bit integers (a 500, not a 400).
    if page is not None and not 1 <= page <= MAX_ID:
        raise invalid("page", f"must be between 1 and {MAX_ID}")
    try:
        sort = paging.parse_sort(query.get("sort", resource.default_sort), allowed)
    except ValueError as exc:
        raise invalid("sort", str(exc)) from None
    filters = {name: query[name] for name in resource.filters if name in query}
    return PageRequest(per_page=per_page, sort=sort, filters=filters, page=page)


def collection_get(request, resource: Resource, relation: Relation | None = None) -> Response:
    page = page_request(request, resource)
    session = request.dbconnection  # Core only: states, the page, its count
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
    found = current.of_collection(request, dependencies, state, parent)
    # The 304 needs no page query: the state rows alone decide it.
    early = early_not_modified(request, found)
    if early is not None:
        return early
    cache = request.registry.response_cache
    route = relation.route if relation else resource.collection_route
    cached = cache.get(request, route, found.etag)
    if cached is not None:
        return cached

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
    response = respond(
        request,
        body,
        etag=found.etag,
        last_modified=found.last_modified,
        headers={"Link": links.link_header(nav)},
    )
    cache.put(request, route, response)
    return response


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
    if current.conditions(request):
        # If-Match on a POST compares the collection's ETag: "add this only if the
        # collection is still as I saw it". Its state rows are held until the commit.
        current.lock_collections(request, resource.dependencies)
        state = states(request.dbsession, resource.dependencies)
        check_write(
            request,
            current.of_collection(request, resource.dependencies, state),
            required=False,
        )
    data = request.validated["body"]
    instance = resource.create(request, data) if resource.create else resource.model(**data)
    request.dbsession.add(instance)
    flush(request, resource)
    bump(request.dbsession, resource.name, +1)
    location = links.href(request, resource.item_route, id=instance.id)
    return represent_item(request, resource, instance, status=201, Location=location)


# -- items ------------------------------------------------------------------------------


def item_get(request, resource: Resource) -> Response:
    ident = path_id(request, resource)
    cache = request.registry.response_cache
    if current.conditions(request) or cache.enabled(resource.item_route):
        found = current.item(request, resource, ident)
        if found is None:
            raise not_found(resource, ident)
        early = early_not_modified(request, found)
        if early is not None:
            return early
        cached = cache.get(request, resource.item_route, found.etag)
        if cached is not None:
            return cached
    response = represent_item(request, resource, load_row(request, resource, ident))
    cache.put(request, resource.item_route, response)
    return response


def item_write(request, resource: Resource) -> Response:
    """PUT (every writable field, absent optional ones reset) or PATCH (only those sent)."""
    instance = request.validated["instance"]  # as item_preconditions checked it
    data = request.validated["body"]
    if resource.update:
        resource.update(request, instance, data)
    else:
        for name, value in data.items():
            setattr(instance, name, value)
    # Every write is an UPDATE ... WHERE version = <checked version>, even one that changes
    # no field: otherwise a no-op PUT racing a real one would answer 200 for a state that
    # a concurrent writer had already replaced.
    instance.updated_at = utcnow()
    flush(request, resource)
    bump(request.dbsession, resource.name)
    return represent_item(request, resource, instance)


def item_delete(request, resource: Resource) -> Response:
    instance = request.validated["instance"]  # as item_preconditions checked it
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
    # What the OpenAPI document describes representations with (hyperapi.openapi).
    collection.hyperapi_body = resource.body
    item = Service(
        name=resource.item_route,
        pyramid_route=resource.item_route,
        description=f"One of the {resource.name}.",
    )
    item.hyperapi_body = resource.body
    # What hyperapi.resources.prefetch reads along with the credentials' user.
    item.hyperapi_resource = resource
    item.add_view("GET", _bind(item_get, resource))
    # Preconditions before the body: Cornice runs its default validator first, so it is
    # excluded and named again after ours.
    write = {
        "validators": (item_preconditions(resource), validation.validate),
        "exclude": validation.validate,
        "permission": resource.edit_permission,
    }
    if "PUT" in resource.item_methods:
        body = resource.replace_body or resource.body
        item.add_view(
            "PUT", _bind(item_write, resource), schema=request_schema(body=body), **write
        )
    if "PATCH" in resource.item_methods:
        item.add_view(
            "PATCH",
            _bind(item_write, resource),
            schema=request_schema(body=resource.patch_body()),
            **write,
        )
    if "DELETE" in resource.item_methods:
        item.add_view("DELETE", _bind(item_delete, resource), **write)
    return [collection, item]


def relation_service(relation: Relation) -> Service:
    service = Service(
        name=relation.route,
        pyramid_route=relation.route,
        description=f"The {relation.member.name} of one of the {relation.parent.name}.",
    )
    service.hyperapi_body = relation.member.body
    service.add_view(
        "GET",
        _bind(collection_get, relation.member, relation),
        schema=request_schema(querystring=relation.member.querystring()),
    )
    return service
