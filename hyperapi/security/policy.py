"""The security policy: small per-scheme policies asked in the configured order.

As Warehouse's ``MultiSecurityPolicy``: the first scheme that recognises the request's
credentials decides who it is from, and the identity is cached for the request with
``RequestLocalCache``. Authorization is Pyramid's ACL helper over the identity's principals.

Every scheme is asked, whatever headers the request carries: a scheme decides for itself
what its credentials look like (``Authorization: Bearer``, ``Authorization: Basic``, an
``X-API-Key`` header...). A scheme that finds credentials of its kind that do not verify
ends the search: the request is then unauthenticated, and the reason is kept for the 401.
Such a request is permitted nothing, not even what anyone may do without credentials: the
client learns that its credentials are bad (hyperapi.security) instead of being served as
anonymous.
"""

from __future__ import annotations

import logging

from pyramid.authorization import ACLHelper, Everyone
from pyramid.request import RequestLocalCache
from pyramid.security import Denied

from ..resources.representation import add_vary
from .identity import AuthenticationFailed, Identity

log = logging.getLogger(__name__)

#: Where the reason of a failed authentication is kept for the 401: (scheme name, reason).
FAILURE = "hyperapi.auth.failure"


class MultiSecurityPolicy:
    def __init__(self, schemes):
        self.schemes = list(schemes)
        self.names = [scheme.name for scheme in self.schemes]
        self.acl = ACLHelper()
        self._cache = RequestLocalCache(self._identify)
        # RFC 9110 §12.5.5: the response depends on every header a scheme reads, so shared
        # caches must key on them.
        self.vary = list(dict.fromkeys(h for s in self.schemes for h in s.vary))

    def add_vary(self, request, response) -> None:
        """A response callback: name the headers every scheme reads in ``Vary``."""
        add_vary(response, *self.vary)

    def carries_credentials(self, request) -> bool:
        """Whether the request has a header some scheme reads its credentials from."""
        headers = request.headers
        return any(name in headers for name in self.vary)

    def _identify(self, request) -> Identity | None:
        request.add_response_callback(self.add_vary)
        for scheme in self.schemes:
            try:
                identity = scheme.identify(request)
            except AuthenticationFailed as failure:
                request.environ[FAILURE] = (scheme.name, failure.reason)
                # The reason only: never the credentials that failed.
                log.info("authentication failed: scheme=%s reason=%s", scheme.name, failure)
                return None
            if identity is not None:
                return identity
        if "Authorization" in request.headers:
            request.environ[FAILURE] = (
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
        if identity is not None:
            principals = identity.principals
        elif FAILURE in request.environ:
            # Credentials that fail are refused even where none are needed: the Denied
            # becomes forbidden_view's 401, which says why they failed.
            return Denied("The credentials presented did not verify.")
        else:
            principals = [Everyone]
        return self.acl.permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []

    def challenges(self, request) -> list[str]:
        """One ``WWW-Authenticate`` challenge per enabled scheme (RFC 9110 §11.6.1)."""
        return [c for c in (scheme.challenge(request) for scheme in self.schemes) if c]


def quoted(value: str) -> str:
    """An RFC 9110 §5.6.4 quoted-string, for auth-param values such as the realm."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
