"""The rate-limit tween: count each request against its policy, answer 429 when it is spent.

Each request counts against one policy (its route's, else the default), partitioned by who
sent it: the authenticated user, else the client address (``request.client_address``, which
believes ``X-Forwarded-For`` only from trusted proxies). Every response it lets through
carries the ``RateLimit-Policy`` and ``RateLimit`` fields of
draft-ietf-httpapi-ratelimit-headers; a refused request gets 429 problem details of type
``quota-exceeded`` with ``violated-policies`` and ``Retry-After``. Exempt routes (the
operations endpoints) are neither counted nor annotated.

Knowing the user means authenticating the request, and the security policy does that lazily,
reading the database through the request's transaction: so this tween runs inside pyramid_tm
(see ``hyperapi.tweens``). Authenticating HTTP Basic credentials consults the failed-login
guard first, whose 429 is returned from here as it is.
"""

from __future__ import annotations

import functools

from pyramid.httpexceptions import HTTPException
from pyramid.interfaces import IRoutesMapper

from ..ratelimit import Outcome, Policies, quota_exceeded
from ..ratelimit.limiter import limiter_unavailable
from ..settings import ConfigurationError

#: Where the outcome of a request is kept, so that a replay by pyramid_retry (which reuses
#: the WSGI environ) is not counted twice.
ENVIRON_KEY = "hyperapi.ratelimit.outcome"


def _routes(registry, names):
    mapper = registry.getUtility(IRoutesMapper)
    routes = []
    for name in names:
        route = mapper.get_route(name)
        if route is None:
            raise ConfigurationError(f"hyperapi.ratelimit: no route named {name!r}")
        routes.append(route)
    return routes


def ratelimit_tween_factory(handler, registry):
    if not registry.settings["hyperapi.ratelimit.enabled"]:
        return handler
    limiter = registry.ratelimiter
    policies: Policies = registry.ratelimit_policies
    exempt = _routes(registry, policies.exempt)
    overrides = list(
        zip(_routes(registry, [p.route for p in policies.routes]), policies.routes, strict=True)
    )

    # Remembered per method and path: matching every exempt and overriding route's pattern
    # was about a dozen regular expressions per request, and the answer depends on nothing
    # else. Bounded, since paths come from clients.
    @functools.lru_cache(maxsize=4096)
    def policy_of(method: str, path: str):
        """The policy of a request; None for an exempt route."""
        if any(route.match(path) is not None for route in exempt):
            return None
        for route, override in overrides:
            if override.applies_to(method) and route.match(path) is not None:
                return override.policy
        return policies.default

    def policy_for(request):
        return policy_of(request.method, request.path_info)

    def ratelimit_tween(request):
        policy = policy_for(request)
        if policy is None:
            return handler(request)
        outcome: Outcome | None = request.environ.get(ENVIRON_KEY)
        if outcome is None:
            try:
                identity = request.identity
            except HTTPException as refused:  # the failed-authentication guard said no
                return refused
            if identity is not None:
                key = f"user:{identity.id}"
            else:
                key = "addr:" + request.client_address
            outcome = limiter.hit(policy, key)
            request.environ[ENVIRON_KEY] = outcome
        if not outcome.allowed:
            if not outcome.known:
                return limiter_unavailable(outcome, limiter.retry_interval)
            return quota_exceeded(outcome)
        response = handler(request)
        # Appended, not set: no other layer writes these fields (setting each would search
        # the response's header list for an earlier one).
        response.headerlist.extend(outcome.headers().items())
        return response

    return ratelimit_tween
