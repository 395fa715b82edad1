"""HTTP Basic authentication (RFC 7617) against argon2id password hashes.

Verifying an argon2id hash costs tens of milliseconds by design, too much for every request
of a client that sends Basic credentials each time. Successful verifications are remembered
briefly, as Kinto's accounts plugin does: the key is an HMAC of the user id and password
under the server secret (the password itself is never stored), the value the password hash
that verified. A changed password has a new hash, so the entry stops matching at once.

A hash made with older argon2 parameters is replaced, after a successful verification, by
one made with the current parameters (argon2-cffi's ``check_needs_rehash``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from pyramid.authentication import extract_http_basic_credentials
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from zope.interface import implementer

from ..interfaces import IAuthenticationScheme
from ..models import SAFE_METHODS, User
from .identity import AuthenticationFailed, Identity, user_by_name
from .policy import quoted

log = logging.getLogger(__name__)

MAX_FIELD = 256


@implementer(IAuthenticationScheme)
class BasicScheme:
    name = "basic"
    vary = ("Authorization",)

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
        cache = self.registry.verification_cache
        cache_key = self.cache_key(user.id, password)
        cached = cache.get(cache_key)
        if cached is None or not hmac.compare_digest(cached, user.password_hash):
            if not passwords.verify(user.password_hash, password):
                self._failed(request)
            verified = user.password_hash
            if passwords.needs_rehash(verified):
                verified = passwords.hash(password)
                self._rehash(request, user.id, user.password_hash, verified)
            cache.set(cache_key, verified, self.ttl)
        return Identity(
            id=user.id, username=user.username, is_admin=user.is_admin, scheme=self.name
        )

    def cache_key(self, user_id: int, password: str) -> str:
        """HMAC(secret, user id + password): usable as a key, useless to whoever reads it."""
        return hmac.new(self.key, f"{user_id}:{password}".encode(), "sha256").hexdigest()

    def _failed(self, request):
        guard = getattr(self.registry, "authentication_guard", None)
        if guard is not None:
            guard.failed(request)
        raise AuthenticationFailed("the username or password is not valid")

    def _rehash(self, request, user_id: int, old_hash: str, new_hash: str) -> None:
        """Store a hash made with the current argon2 parameters in place of an older one.

        Compare-and-swap on the old hash, so that a password changed meanwhile is never
        overwritten; ``updated_at`` is kept (and ``version`` untouched) because the user's
        representation does not change. A read's transaction stays a read: the hash is
        stored in a short transaction of its own, and if that fails the next login retries.
        """
        table = User.__table__
        statement = (
            update(table)
            .where(table.c.id == user_id, table.c.password_hash == old_hash)
            .values(password_hash=new_hash, updated_at=table.c.updated_at)
        )
        if request.method not in SAFE_METHODS:
            # The request's own session already holds the write lock.
            request.dbsession.execute(statement)
            return
        try:
            with self.registry.database.write_sessions() as session, session.begin():
                session.execute(statement)
        except SQLAlchemyError as exc:
            # The class only: the statement's parameters are password hashes.
            log.warning("could not store a rehashed password for user %s: %s", user_id, type(exc))

    def challenge(self, request) -> str:
        # RFC 7617 §2.1: the charset parameter announces UTF-8 user-ids and passwords.
        return f'Basic realm={quoted(self.realm)}, charset="UTF-8"'
