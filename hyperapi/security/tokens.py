"""Bearer tokens: signed with itsdangerous, expiring, revocable.

Like Warehouse's TokenService: one ``URLSafeTimedSerializer`` whose salt names the purpose,
and the library's ``SignatureExpired``/``BadSignature`` turned into our own exception here
and nowhere else. Secrets rotate: ``hyperapi.auth.token_secrets`` lists them newest first;
the newest signs and every listed one verifies, so a retired secret keeps its tokens valid
until they expire or it is removed from the list.

A token carries the user's id, a random token id (what revocation remembers) and the user's
token generation, which a password change increments: that revokes every earlier token of
the user at once, in every process, with no list to keep.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from zope.interface import implementer

from ..interfaces import IRevocations
from ..models import RevokedToken
from ..models.meta import utcnow
from .identity import AuthenticationFailed

SALT = "hyperapi.auth.bearer-token"


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_id: str
    generation: int
    issued_at: dt.datetime
    expires_at: dt.datetime


class TokenService:
    def __init__(self, secrets_newest_first: list[str], expires_in: int):
        if not secrets_newest_first:
            raise ValueError("at least one token secret is needed")
        # itsdangerous signs with the *last* key and verifies with any.
        self.serializer = URLSafeTimedSerializer(list(reversed(secrets_newest_first)), salt=SALT)
        self.expires_in = expires_in

    def issue(self, user_id: int, generation: int) -> str:
        return self.serializer.dumps(
            {"u": user_id, "j": secrets.token_urlsafe(16), "g": generation}
        )

    def verify(self, token: str) -> TokenClaims:
        if len(token) > 1024:
            raise AuthenticationFailed("the token is malformed")
        try:
            payload, signed_at = self.serializer.loads(
                token, max_age=self.expires_in, return_timestamp=True
            )
        except SignatureExpired:
            raise AuthenticationFailed("the token has expired") from None
        except BadSignature:
            raise AuthenticationFailed("the token is not valid") from None
        try:
            claims = TokenClaims(
                user_id=int(payload["u"]),
                token_id=str(payload["j"]),
                generation=int(payload["g"]),
                issued_at=signed_at,
                expires_at=signed_at + dt.timedelta(seconds=self.expires_in),
            )
        except (TypeError, KeyError, ValueError):
            raise AuthenticationFailed("the token is not valid") from None
        return claims


@implementer(IRevocations)
class DatabaseRevocations:
    """Revoked token ids in the ``revoked_tokens`` table (the default)."""

    def __init__(self, registry):
        pass

    def revoke(self, request, token_id: str, expires_at: dt.datetime) -> None:
        session = request.dbsession
        table = RevokedToken.__table__
        # Rows whose token has expired anyway are of no more use.
        session.execute(delete(table).where(table.c.expires_at < utcnow()))
        if session.get(RevokedToken, token_id) is None:
            session.add(RevokedToken(token_id=token_id, expires_at=expires_at))

    def is_revoked(self, request, token_id: str) -> bool:
        table = RevokedToken.__table__
        found = request.dbsession.execute(
            select(table.c.token_id).where(table.c.token_id == token_id)
        ).first()
        return found is not None


@implementer(IRevocations)
class RedisRevocations:
    """Revoked token ids as Redis keys that expire with the token."""

    prefix = "hyperapi:revoked:"

    def __init__(self, registry):
        import redis

        url = registry.settings["hyperapi.redis.url"]
        if not url:
            raise ValueError("RedisRevocations needs hyperapi.redis.url")
        self.client = redis.Redis.from_url(url, socket_timeout=2)

    def revoke(self, request, token_id: str, expires_at: dt.datetime) -> None:
        ttl = max(1, int((expires_at - utcnow()).total_seconds()) + 1)
        self.client.set(self.prefix + token_id, b"1", ex=ttl)

    def is_revoked(self, request, token_id: str) -> bool:
        return bool(self.client.exists(self.prefix + token_id))
