"""The contracts of hyperapi's pluggable parts.

Each part is chosen in the ini file by name or dotted path and has a real implementation
and a memory one; the same contract tests run against every implementation.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IAuthenticationScheme(Interface):
    """One way of authenticating a request (Bearer token, HTTP Basic, an API key...).

    Enabled and ordered by ``hyperapi.auth.policies`` (``bearer basic`` by default), each
    entry a built-in name or the dotted path of a class, e.g.::

        hyperapi.auth.policies = mycompany.auth.ApiKeyScheme bearer basic

    The class is called once, at start-up, with the application's registry
    (``Scheme(registry)``); it reads its own settings from ``registry.settings`` (settings
    hyperapi does not know are passed through as strings) and should fail there, raising
    ``hyperapi.settings.ConfigurationError``, when they are unusable. Its instance is shared
    by every request and thread. The application refuses to start when it does not provide
    the attributes and methods below.

    For each request the schemes are asked in order; the first to return an identity
    decides who the request is from. A scheme that finds credentials of its kind that do not
    verify raises ``AuthenticationFailed``, which ends the search: the request is then
    unauthenticated (401 where credentials are needed) and the reason is shown to the client.

    A scheme compares secrets in constant time (``hmac.compare_digest``) and never logs
    them. Whether its credentials may be exchanged for a bearer token at
    ``POST /api/v1/tokens`` is decided by ``hyperapi.auth.login_policies`` (by default every
    enabled scheme but ``bearer``).
    """

    name = Attribute("Short, unique name of the scheme, e.g. 'apikey'; kept on the identity.")

    vary = Attribute(
        "The request headers the scheme reads its credentials from, e.g. ('X-API-Key',): "
        "every response names them in Vary (RFC 9110 §12.5.5)."
    )

    def identify(request):
        """The verified :class:`hyperapi.security.identity.Identity` of the request's
        credentials for this scheme, or None when the request carries none of its kind.

        Credentials of its kind that do not verify raise
        :class:`hyperapi.security.identity.AuthenticationFailed` with a reason a client may
        read (never a secret); the request is then unauthenticated. Look the user up with
        ``hyperapi.security.identity.user_by_name`` or ``user_by_id``: a GET of an item
        then reads the item in the same statement (hyperapi.resources.prefetch).
        """

    def challenge(request):
        """The ``WWW-Authenticate`` challenge of this scheme (RFC 9110 §11.6.1), or None.

        Sent, with every other enabled scheme's, on each 401. The reason of a failure of
        this scheme is in ``request.environ["hyperapi.auth.failure"]`` as
        ``(scheme name, reason)``, should the challenge carry it (RFC 6750 §3.1 does).
        """


class IRevocations(Interface):
    """Where revoked bearer tokens are remembered until they expire.

    Chosen by ``hyperapi.auth.revocations``: ``database`` (the default, the
    ``revoked_tokens`` table), ``redis`` (``hyperapi.redis.url``), ``memory`` (one process
    only: tests and single-process servers), or a dotted path. The class is called with the
    registry. ``database`` and ``redis`` are visible to every server process.
    """

    def revoke(request, token_id, expires_at):
        """Remember that ``token_id`` is revoked until ``expires_at`` (an aware datetime).

        ``expires_at`` is when the token stops being accepted (``TokenClaims.
        accepted_until``, a second after the expiry a client is told of).

        Idempotent; a token already expired need not be remembered at all.
        """

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


class IResponseStore(Interface):
    """Where the response cache (hyperapi.resources.cache) keeps its entries.

    Chosen by ``hyperapi.response_cache.backend``: ``memory``, ``redis`` or a dotted path;
    the class is called with the registry. Values are opaque bytes; a store that cannot
    answer returns None (a miss) rather than raising.
    """

    def get(key):
        """The bytes stored under ``key`` if they have not expired, else None."""

    def set(key, value, ttl):
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
