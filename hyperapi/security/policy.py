"""The security policy: small per-scheme policies asked in the configured order.

As Warehouse's ``MultiSecurityPolicy``: the first scheme that recognises the request's
credentials decides who it is from, and the identity is cached for the request with
``RequestLocalCache``. Authorization is Pyramid's ACL helper over the identity's principals.
"""

from __future__ import annotations

from pyramid.authorization import ACLHelper, Everyone
from pyramid.request import RequestLocalCache

from .identity import AuthenticationFailed, Identity


def add_vary_authorization(request, response) -> None:
    # The response depends on who asked: shared caches must key on Authorization.
    vary = list(response.vary or ())
    if "Authorization" not in vary:
        response.vary = [*vary, "Authorization"]


class MultiSecurityPolicy:
    def __init__(self, schemes):
        self.schemes = list(schemes)
        self.acl = ACLHelper()
        self._cache = RequestLocalCache(self._identify)

    def _identify(self, request) -> Identity | None:
        request.add_response_callback(add_vary_authorization)
        if "Authorization" not in request.headers:
            return None
        for scheme in self.schemes:
            try:
                identity = scheme.identify(request)
            except AuthenticationFailed as failure:
                request.environ["hyperapi.auth.failure"] = (scheme.name, failure.reason)
                return None
            if identity is not None:
                return identity
        request.environ["hyperapi.auth.failure"] = (
            "",
            "the Authorization scheme is not one this server accepts",
        )
        return None

    def identity(self, request) -> Identity | None:
        return self._cache.get_or_create(request)

    def authenticated_userid(self, request) -> int | None:
        identity = self.identity(request)
        return identity.id if identity is not None else None

    def permits(self, request, context, permission):
        identity = self.identity(request)
        principals = identity.principals if identity is not None else [Everyone]
        return self.acl.permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []

    def challenges(self, request) -> list[str]:
        return [c for c in (scheme.challenge(request) for scheme in self.schemes) if c]
