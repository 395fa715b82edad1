"""Hypermedia links, built only from route names.

Representations carry HAL-style ``_links``; collections repeat their navigation links in an
RFC 8288 ``Link`` header. URLs are absolute and built as ``request.route_url`` builds them,
so they follow the request's scheme and host (which a trusted proxy may set; see
hyperapi.proxy).

A user's representation alone has five or six links, so their cost is paid many times per
response (25 times more on a page). ``request.route_url`` recomputes the application URL
from the WSGI environ and parses its keyword arguments for ``_query``/``_anchor``/``_app_url``
overrides on every call; here the application URL is computed once per request, and a link
without overrides is the route's own generator (``route.generate``, the function
``route_url`` calls, so the path and its quoting are the same) appended to it. Links with
overrides (``_query``) still go through ``route_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyramid.interfaces import IRoutesMapper

#: Where the request's application URL is kept once computed. The scheme and host it is
#: made of are settled before any view runs (hyperapi.proxy rewrites them on NewRequest).
APPLICATION_URL = "hyperapi.links.application_url"


def href(request, route: str, **kw: Any) -> str:
    for name in kw:
        if name[0] == "_":  # _query, _anchor, _app_url...: route_url knows them
            return request.route_url(route, **kw)
    environ = request.environ
    base = environ.get(APPLICATION_URL)
    if base is None:
        base = environ[APPLICATION_URL] = request.application_url
    found = request.registry.getUtility(IRoutesMapper).get_route(route)
    if found is None or found.pregenerator is not None:
        return request.route_url(route, **kw)  # its KeyError, or its pregenerator's say
    return base + found.generate(kw)


def link(request, route: str, **kw: Any) -> dict[str, str]:
    return {"href": href(request, route, **kw)}


def templated_link(request, route: str, variable: str, **kw: Any) -> dict[str, Any]:
    """A HAL templated link (RFC 6570 level 1): ``{variable}`` is for the client to fill."""
    marker = "0" * 12  # a value the route accepts, replaced by the template expression
    url = href(request, route, **{variable: marker}, **kw)
    return {"href": url.replace(marker, "{" + variable + "}"), "templated": True}


def link_header(links: Mapping[str, Mapping[str, str]]) -> str:
    """``Link`` header value (RFC 8288 §3) for the given relations."""
    return ", ".join(f'<{target["href"]}>; rel="{rel}"' for rel, target in links.items())
