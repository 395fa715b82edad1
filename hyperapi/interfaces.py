"""The contracts of hyperapi's pluggable parts.

Each part is chosen in the ini file by name or dotted path and has a real implementation
and a memory one; the same contract tests run against every implementation.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IAuthenticationScheme(Interface):
    """One way of authenticating a request (Bearer token, HTTP Basic, an API key...).

    Enabled and ordered by ``hyperapi.auth.policies`` (``bearer basic`` by default), each
    entry a built-in name or the dotted path of a class. The class is called with the
    application's registry (``Scheme(registry)``) once, at start-up, and must provide:
    """

    name = Attribute("Short name of the scheme, e.g. 'apikey'; recorded on the identity.")

    def identify(request):
        """The verified :class:`hyperapi.security.identity.Identity` of the request's
        credentials for this scheme, or None when the request carries none of its kind.

        Credentials of its kind that do not verify raise
        :class:`hyperapi.security.identity.AuthenticationFailed` with a reason a client may
        read (never a secret); the request is then unauthenticated.
        """

    def challenge(request):
        """The ``WWW-Authenticate`` challenge of this scheme (RFC 9110 §11.6.1), or None."""


class IRevocations(Interface):
    """Where revoked bearer tokens are remembered, visible to every server process."""

    def revoke(request, token_id, expires_at):
        """Remember that ``token_id`` is revoked until ``expires_at`` (an aware datetime)."""

    def is_revoked(request, token_id):
        """True when ``token_id`` was revoked and has not yet expired."""


class IVerificationCache(Interface):
    """A short-lived memory of successful password verifications.

    Keys are HMACs of the credentials, never the password; values are the password hash
    that verified, so that a changed password no longer matches.
    """

    def get(key):
        """The value stored under ``key`` if it has not expired, else None."""

    def set(key, value, ttl):
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
