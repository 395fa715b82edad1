"""A third-party authentication scheme: an ``X-API-Key`` header, enabled by settings only.

It proves that a scheme can be added to hyperapi without changing hyperapi::

    hyperapi.auth.policies = tests.plugins.apikey.ApiKeyScheme bearer basic
    tests.apikey.keys = alice=some-long-key bob=another-key

Keys map to usernames; a real plugin would keep hashed keys in a table of its own.
"""

from __future__ import annotations

import hmac

from pyramid.settings import aslist
from zope.interface import implementer

from hyperapi.interfaces import IAuthenticationScheme
from hyperapi.security.identity import AuthenticationFailed, Identity, user_by_name
from hyperapi.settings import ConfigurationError

HEADER = "X-API-Key"


@implementer(IAuthenticationScheme)
class ApiKeyScheme:
    name = "apikey"
    vary = (HEADER,)

    def __init__(self, registry):
        self.keys: list[tuple[bytes, str]] = []
        for entry in aslist(registry.settings.get("tests.apikey.keys", "")):
            username, sep, key = entry.partition("=")
            if not sep or not username or not key:
                raise ConfigurationError("tests.apikey.keys: entries are username=key")
            self.keys.append((key.encode(), username))

    def identify(self, request) -> Identity | None:
        presented = request.headers.get(HEADER)
        if presented is None:
            return None
        presented_bytes = presented.encode()
        username = None
        for key, owner in self.keys:
            # Every key is compared, each in constant time: no early exit to time.
            if hmac.compare_digest(key, presented_bytes):
                username = owner
        user = user_by_name(request, username) if username is not None else None
        if user is None:
            raise AuthenticationFailed("the API key is not valid")
        return Identity(
            id=user.id, username=user.username, is_admin=user.is_admin, scheme=self.name
        )

    def challenge(self, request) -> str:
        return f'ApiKey header="{HEADER}"'
