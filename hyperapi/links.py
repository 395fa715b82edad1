"""Hypermedia links, built only from route names.

Representations carry HAL-style ``_links``; collections repeat their navigation links in an
RFC 8288 ``Link`` header. URLs are absolute and come from ``request.route_url``, so they
follow the request's scheme and host (which a trusted proxy may set; see hyperapi.proxy).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def href(request, route: str, **kw: Any) -> str:
    return request.route_url(route, **kw)


def link(request, route: str, **kw: Any) -> dict[str, str]:
    return {"href": request.route_url(route, **kw)}


def templated_link(request, route: str, variable: str, **kw: Any) -> dict[str, Any]:
    """A HAL templated link (RFC 6570 level 1): ``{variable}`` is for the client to fill."""
    marker = "0" * 12  # a value the route accepts, replaced by the template expression
    url = request.route_url(route, **{variable: marker}, **kw)
    return {"href": url.replace(marker, "{" + variable + "}"), "templated": True}


def link_header(links: Mapping[str, Mapping[str, str]]) -> str:
    """``Link`` header value (RFC 8288 §3) for the given relations."""
    return ", ".join(f'<{target["href"]}>; rel="{rel}"' for rel, target in links.items())
