"""The conditional tween: 304s and 412s for GET/HEAD, and the caching fields of responses.

Reads are made conditional after the view (RFC 9110 §13.2.1: preconditions are evaluated
once the request has passed its normal checks, and ignored when the answer is not 2xx).
For each GET or HEAD whose response is a 2xx carrying an ``ETag`` or ``Last-Modified``,
this tween applies the one evaluator (hyperapi.resources.preconditions) and turns the
response into a 304 (no body; ETag, Last-Modified, Cache-Control and Vary kept) or, when
``If-Match``/``If-Unmodified-Since`` fails, a 412 carrying the current ETag and
representation. The item and collection views answer most 304s before this point from
their validators alone, without building the representation (hyperapi.resources.views);
this tween covers every other response and is the one place the 304's shape is settled.

One 304 is answered before the router: an item GET/HEAD whose row was read in the same
statement as its credentials' user (hyperapi.resources.prefetch) has its validators at hand
already, and ``not_modified_before_view`` gives the view's own 304 from them whenever
nothing on the way to the view could answer otherwise; it declines everything else.

Then, for every response, the caching policy (RFC 9111 §5.2.2), unless the view set one:

- the routes in ``hyperapi.http_cache.public_routes`` (the entry document, problem types,
  the OpenAPI document), answered 2xx/304 to GET/HEAD: ``public, max-age=<max_age>``, and
  a strong ETag digesting the bytes when the view gave none, so they can be revalidated;
- other successful responses: ``private, no-cache``: a client may store them but must
  revalidate (cheaply, with the ETag), and no shared cache may serve them to someone else;
- errors: ``no-store`` (a 404 is heuristically cacheable otherwise, RFC 9111 §4.2.2).

Every response varies with ``Accept`` (JSON, HAL or, for errors, HTML); the security policy
adds ``Authorization``.
"""

from __future__ import annotations

import json

from pyramid.interfaces import IRoutesMapper

from ..errors import Problem
from ..resources.preconditions import READS, Outcome, Validators, evaluate
from ..resources.representation import add_vary, content_etag, not_modified
from ..resources.validators import conditions
from ..resources.views import not_modified_before_view
from ..settings import ConfigurationError


def conditional_response(request, response):
    """The response to a GET/HEAD once its preconditions are applied."""
    if response.status_code == 304:
        return response
    if not 200 <= response.status_code < 300:
        return response  # RFC 9110 §13.2.1: preconditions apply to 2xx answers only
    requested = conditions(request)
    if not requested:
        return response  # most requests: no need to parse the validators back
    etag = response.headers.get("ETag")
    last_modified = response.last_modified
    if etag is None and last_modified is None:
        return response
    outcome = evaluate(request.method, requested, Validators(etag, last_modified))
    if outcome is Outcome.NOT_MODIFIED:
        return not_modified(headers=response.headerlist)
    if outcome is Outcome.FAILED:
        headers = {
            name: response.headers[name]
            for name in ("ETag", "Last-Modified")
            if name in response.headers
        }
        members = {}
        if response.content_type in ("application/json", "application/hal+json"):
            members["current"] = json.loads(response.body)
        return Problem(
            "precondition-failed",
            "A precondition of this request does not hold: the resource has changed since "
            "the client saw it (its current ETag is in the ETag header).",
            headers=headers,
            **members,
        )
    return response


def check_routes(registry, setting: str, names) -> None:
    """Fail at start-up on a route name that names no route (a typo would silently do nothing)."""
    mapper = registry.getUtility(IRoutesMapper)
    unknown = sorted(name for name in names if mapper.get_route(name) is None)
    if unknown:
        raise ConfigurationError(f"{setting}: no route named {', '.join(unknown)}")


def conditional_tween_factory(handler, registry):
    settings = registry.settings
    public_routes = frozenset(settings["hyperapi.http_cache.public_routes"])
    # Checked here because every route exists by the time tweens are built.
    check_routes(registry, "hyperapi.http_cache.public_routes", public_routes)
    check_routes(registry, "hyperapi.response_cache.routes", registry.response_cache.timeouts)
    max_age = settings["hyperapi.http_cache.max_age"]
    if max_age < 0:
        raise ConfigurationError("hyperapi.http_cache.max_age must not be negative")
    public = f"public, max-age={max_age}"

    def conditional_tween(request):
        read = request.method in READS
        # An item's 304 decided from the row its authentication read, before the router.
        response = not_modified_before_view(request) if read else None
        if response is None:
            response = handler(request)
        route = request.matched_route
        shared = read and route is not None and route.name in public_routes
        if shared and response.status_code == 200 and "ETag" not in response.headers:
            # The same bytes for everyone: their digest is a strong validator.
            response.headers["ETag"] = content_etag(response.body, response.content_type)
        if read:
            response = conditional_response(request, response)
        if "Cache-Control" not in response.headers:
            # Appended: it is not there (setting it would search the list again).
            if response.status_code >= 400:
                policy = "no-store"
            elif shared:
                policy = public
            else:
                policy = "private, no-cache"
            response.headerlist.append(("Cache-Control", policy))
        add_vary(response, "Accept")
        return response

    return conditional_tween
