"""HTTP Basic authentication (RFC 7617) against argon2id password hashes.

Verifying an argon2id hash costs tens of milliseconds by design, too much for every request
of a client that sends Basic credentials each time. Successful verifications are remembered
briefly, as Kinto's accounts plugin does: the key is an HMAC of the user id and password
under the server secret (the password itself is never stored), the value the password hash
that verified. A changed password has a new hash, so the entry stops matching at once.
"""

from __future__ import annotations

import hashlib
import hmac

from pyramid.authentication import extract_http_basic_credentials
from sqlalchemy import update
from zope.interface import implementer

from ..interfaces import IAuthenticationScheme
from ..models import User
from .identity import AuthenticationFailed, Identity, user_by_name

MAX_FIELD = 256


@implementer(IAuthenticationScheme)
class BasicScheme:
    name = "basic"

    def __init__(self, registry):
        settings = registry.settings
        self.realm = settings["hyperapi.auth.realm"]
        self.ttl = settings["hyperapi.auth.verification_cache_ttl"]
        self.key = hashlib.sha256(
            ("basic-verification:" + settings["hyperapi.secret"]).encode()
        ).digest()
        self.registry = registry

    def identify(self, request) -> Identity | None:
        credentials = extract_http_basic_credentials(request)
        if credentials is None:
            header = request.headers.get("Authorization", "")
            if header[:6].lower() == "basic ":
                raise AuthenticationFailed("the Basic credentials are malformed")
            return None
        username, password = credentials
        if not username or len(username) > MAX_FIELD or len(password) > MAX_FIELD:
            raise AuthenticationFailed("the username or password is not valid")
        guard = getattr(self.registry, "authentication_guard", None)
        if guard is not None:
            guard.before_password_check(request)  # may refuse before any hashing
        user = user_by_name(request, username)
        passwords = request.passwords
        if user is None:
            # Spend the same time as a real check, so timing does not reveal usernames.
            passwords.verify(passwords.dummy_hash, password)
            self._failed(request)
        cache_key = hmac.new(self.key, f"{user.id}:{password}".encode(), "sha256").hexdigest()
        cached = self.registry.verification_cache.get(cache_key)
        if cached is None or not hmac.compare_digest(cached, user.password_hash):
            if not passwords.verify(user.password_hash, password):
                self._failed(request)
            if passwords.needs_rehash(user.password_hash):
                self._rehash(request, user.id, passwords.hash(password))
            else:
                self.registry.verification_cache.set(cache_key, user.password_hash, self.ttl)
        return Identity(
            id=user.id, username=user.username, is_admin=user.is_admin, scheme=self.name
        )

    def _failed(self, request):
        guard = getattr(self.registry, "authentication_guard", None)
        if guard is not None:
            guard.failed(request)
        raise AuthenticationFailed("the username or password is not valid")

    @staticmethod
    def _rehash(request, user_id: int, new_hash: str) -> None:
        """The hash used older argon2 parameters: store one made with the current ones."""
        request.dbsession.execute(
            update(User.__table__).where(User.id == user_id).values(password_hash=new_hash)
        )

    def challenge(self, request) -> str:
        return f'Basic realm="{self.realm}", charset="UTF-8"'
