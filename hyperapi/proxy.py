"""Who the client is and which URL they used, believing proxies only when told to.

Behind a reverse proxy the TCP peer (``REMOTE_ADDR``) is the proxy, and the scheme and host
the client typed reach us only in ``X-Forwarded-*`` headers. Anyone can send those headers,
so they are believed only when the peer is in ``hyperapi.trusted_proxies`` (a list of
CIDRs); from any other peer they change nothing.

- ``request.client_address``: ``REMOTE_ADDR``; or, when the peer is trusted, the right-most
  address of ``X-Forwarded-For`` that is not itself a trusted proxy. Each proxy appends the
  address it received the request from, so the entries right of the first untrusted one were
  written by our own proxies, and everything left of it may have been written by the client.
- ``request.from_trusted_proxy``: whether the peer is a trusted proxy (so that other
  forwarded headers, such as ``X-Request-ID``, may be believed).
- ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` from a trusted peer replace the request's
  scheme and host before any view runs, so ``request.route_url`` builds the public URL.

This is done with request methods and a ``NewRequest`` subscriber rather than a WSGI
middleware wrapped around the application: ``main()`` keeps returning Pyramid's router (whose
``registry`` scripts and tests use), the trust list is read from the registry like every
other setting, and pyramid_retry's replays, which reuse the WSGI environ, see the same
values. ``NewRequest`` is notified before traversal, views and exception views, that is
before anything that builds a link; the tweens above it only need ``client_address``, which
does not depend on the rewrite.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from pyramid.events import NewRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What ``client_address`` is when the server gave no usable ``REMOTE_ADDR`` (a Unix socket).
UNKNOWN = "unknown"

#: A host, optionally with a port: a DNS name or IPv4 address, or a bracketed IPv6 address.
HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")
SCHEMES = frozenset(("http", "https"))


def parse_address(text: str) -> Address | None:
    """The IP address in ``text`` (as found in ``REMOTE_ADDR`` or a forwarded hop), or None.

    Proxies write hops as ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1`` or
    ``[2001:db8::1]:4711``; IPv4-mapped IPv6 addresses are read as the IPv4 address they map.
    """
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address_of(peer: str, forwarded_for: str | None, networks: Sequence[Network]) -> str:
    """The client's address, given the peer's, its ``X-Forwarded-For`` and the trusted CIDRs.

    The header is read right to left and only while each hop is a trusted proxy: the first
    hop that is not one is the client. A hop that is not an address at all ends the walk at
    the trusted proxy that forwarded it. When every hop is trusted (a request from inside),
    the left-most is the client.
    """
    current = parse_address(peer)
    if current is None:
        return peer.strip() or UNKNOWN
    if not forwarded_for or not is_trusted(current, networks):
        return str(current)
    for hop in reversed(forwarded_for.split(",")):
        address = parse_address(hop)
        if address is None:
            break
        current = address
        if not is_trusted(address, networks):
            break
    return str(current)


def last_value(header: str | None) -> str | None:
    """The right-most value of a comma-separated header: the one our trusted peer wrote."""
    if not header:
        return None
    value = header.rsplit(",", 1)[-1].strip()
    return value or None


def forwarded_url(proto: str | None, host: str | None) -> tuple[str | None, str | None]:
    """The scheme and host to use from ``X-Forwarded-Proto``/``-Host``; None for unusable ones."""
    scheme = (last_value(proto) or "").lower()
    host = last_value(host)
    return (
        scheme if scheme in SCHEMES else None,
        host if host is not None and HOST.fullmatch(host) else None,
    )


def trusted_networks(request) -> Sequence[Network]:
    return request.registry.settings["hyperapi.trusted_proxies"]


def from_trusted_proxy(request) -> bool:
    """Whether the TCP peer is one of ``hyperapi.trusted_proxies``."""
    peer = parse_address(request.environ.get("REMOTE_ADDR") or "")
    return is_trusted(peer, trusted_networks(request))


def client_address(request) -> str:
    """The address of the client, for rate limits and logs (see the module docstring)."""
    return client_address_of(
        request.environ.get("REMOTE_ADDR") or "",
        request.environ.get("HTTP_X_FORWARDED_FOR"),
        trusted_networks(request),
    )


def apply_forwarded_url(event: NewRequest) -> None:
    """Make the request's scheme and host those the client used, if a trusted proxy says so."""
    request = event.request
    if not request.from_trusted_proxy:
        return
    environ = request.environ
    scheme, host = forwarded_url(
        environ.get("HTTP_X_FORWARDED_PROTO"), environ.get("HTTP_X_FORWARDED_HOST")
    )
    if scheme is not None:
        environ["wsgi.url_scheme"] = scheme
    if host is not None:
        environ["HTTP_HOST"] = host


def includeme(config) -> None:
    config.add_request_method(client_address, "client_address", reify=True)
    config.add_request_method(from_trusted_proxy, "from_trusted_proxy", reify=True)
    if config.get_settings()["hyperapi.trusted_proxies"]:
        config.add_subscriber(apply_forwarded_url, NewRequest)
