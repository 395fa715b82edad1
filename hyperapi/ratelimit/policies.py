"""Rate-limit policies from the ini file, and how they are announced in responses.

A policy is a name and one limit in the ``limits`` library's notation (``300/minute``,
``10 per 30 seconds``). The ini file names three kinds::

    hyperapi.ratelimit.default = 300/minute
    hyperapi.ratelimit.routes =
        POST tokens = 10/minute
        POST users.collection = 20/hour
    hyperapi.ratelimit.authentication_failures = 10/minute

A request counts against the first route policy whose method (or ``*``) and route match it,
else against the default; the failure policy counts failed authentications per address.

Policies are announced with the fields of draft-ietf-httpapi-ratelimit-headers (-09), which
are Structured Field Lists (RFC 9651) of a policy name (an sf-string) with parameters:
``RateLimit-Policy: "default";q=300;w=60`` (quota, window in seconds) and
``RateLimit: "default";r=299;t=60`` (remaining quota, seconds until it resets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import limits
from limits import RateLimitItem

#: ``METHOD route.name = limit``, one per line.
ROUTE_LINE = re.compile(r"(?P<method>[A-Za-z]+|\*)\s+(?P<route>[\w.-]+)\s*=\s*(?P<limit>.+)")
#: Characters a policy name may use, so it needs no escaping inside an sf-string.
NAME = re.compile(r"[\w.-]+")


@dataclass(frozen=True)
class Policy:
    name: str
    limit: RateLimitItem

    @property
    def quota(self) -> int:
        return self.limit.amount

    @property
    def window(self) -> int:
        """The window in seconds."""
        return self.limit.get_expiry()

    def announcement(self) -> str:
        """This policy's member of the ``RateLimit-Policy`` field."""
        return f'"{self.name}";q={self.quota};w={self.window}'

    def status(self, remaining: int, reset_after: int) -> str:
        """This policy's member of the ``RateLimit`` field."""
        return f'"{self.name}";r={max(0, remaining)};t={max(0, reset_after)}'


@dataclass(frozen=True)
class RoutePolicy:
    """A policy that replaces the default for one route and method (``*``: every method)."""

    method: str
    route: str
    policy: Policy

    def applies_to(self, method: str) -> bool:
        return self.method in ("*", method)


def parse_limit(text: str, *, name: str) -> Policy:
    """One limit in ``limits`` notation; several (``10/second;300/minute``) are refused."""
    if not NAME.fullmatch(name):
        raise ValueError(f"policy name {name!r} may use letters, digits, '.', '_', '-'")
    try:
        items = limits.parse_many(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a limit such as '300/minute'") from None
    if len(items) != 1:
        raise ValueError(f"{text.strip()!r}: give one limit per policy")
    if items[0].amount < 1:
        raise ValueError(f"{text.strip()!r}: the quota must be at least 1")
    return Policy(name, items[0])


def parse_routes(text: str) -> list[RoutePolicy]:
    """Route policies from lines of ``METHOD route.name = limit`` (blank lines ignored)."""
    policies = []
    seen = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = ROUTE_LINE.fullmatch(line)
        if match is None:
            raise ValueError(f"{line!r}: expected 'METHOD route.name = N/period'")
        method = match["method"].upper()
        route = match["route"]
        if (method, route) in seen:
            raise ValueError(f"{method} {route} is limited twice")
        seen.add((method, route))
        name = route if method == "*" else f"{method.lower()}-{route}"
        policies.append(RoutePolicy(method, route, parse_limit(match["limit"], name=name)))
    return policies


@dataclass(frozen=True)
class Policies:
    """Every policy of the application, parsed from its settings."""

    default: Policy
    routes: tuple[RoutePolicy, ...]
    failures: Policy
    exempt: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings) -> Policies:
        return cls(
            default=parse_limit(settings["hyperapi.ratelimit.default"], name="default"),
            routes=tuple(parse_routes(settings["hyperapi.ratelimit.routes"])),
            failures=parse_limit(
                settings["hyperapi.ratelimit.authentication_failures"],
                name="authentication-failures",
            ),
            exempt=tuple(settings["hyperapi.ratelimit.exempt_routes"]),
        )
