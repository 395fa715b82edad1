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
import logging
import math
import secrets
import threading
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from zope.interface import implementer

from ..errors import Problem, Throttle
from ..interfaces import IRevocations
from ..models import RevokedToken
from ..models.meta import utcnow
from ..schemas.types import MAX_ID
from ..settings import ConfigurationError
from .identity import AuthenticationFailed

SALT = "hyperapi.auth.bearer-token"
#: Seconds a client is asked to wait when the revocation store does not answer.
RETRY_AFTER = 5

log = logging.getLogger(__name__)


#: How long after ``expires_at`` a token still verifies (see TokenClaims.accepted_until).
LAST_SECOND = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    token_id: str
    generation: int
    issued_at: dt.datetime
    expires_at: dt.datetime

    @property
    def accepted_until(self) -> dt.datetime:
        """The first instant at which the token no longer verifies.

        itsdangerous counts a token's age in whole seconds and accepts an age equal to its
        lifetime, so a token expiring at 12:00:00 is still accepted at 12:00:00.999. A
        revocation is remembered until this instant, not ``expires_at``: otherwise a revoked
        token would work again during its last second.
        """
        return self.expires_at + LAST_SECOND


class TokenService:
    """Issues and verifies tokens; remembers, per process, the tokens it has verified.

    Checking a signature (an HMAC per listed secret until one matches), decoding the
    payload and parsing its JSON cost tens of microseconds on every request of a client
    that sends its token each time. A token's claims never change, so a verified token is
    kept (up to ``max_entries``, the oldest forgotten first) with the timestamp it was
    signed at, and the next request with the very same string only checks its age, by the
    serializer's own clock and rule, so it expires to the second exactly as it would have.
    Only what the signature proves is remembered here: whether the token has been revoked,
    or its user changed their password, is asked of the shared store on every request (see
    hyperapi.security.bearer), or of the row cache that the database keeps in step.
    """

    def __init__(self, secrets_newest_first: list[str], expires_in: int, max_entries: int = 10000):
        if not secrets_newest_first:
            raise ValueError("at least one token secret is needed")
        # itsdangerous signs with the *last* key and verifies with any.
        self.serializer = URLSafeTimedSerializer(list(reversed(secrets_newest_first)), salt=SALT)
        self.expires_in = expires_in
        self.max_entries = max_entries
        #: token -> (claims, signed at as a Unix timestamp): only tokens whose signature held.
        self.verified: dict[str, tuple[TokenClaims, int]] = {}
        self.lock = threading.Lock()
        # The clock itsdangerous measures a token's age with.
        self.clock = self.serializer.make_signer()

    def issue(self, user_id: int, generation: int) -> str:
        return self.serializer.dumps(
            {"u": user_id, "j": secrets.token_urlsafe(16), "g": generation}
        )

    def verify(self, token: str) -> TokenClaims:
        known = self.verified.get(token)
        if known is not None:
            claims, signed_at = known
            # The rule of itsdangerous's TimestampSigner.unsign: 0 <= age <= max_age.
            if 0 <= self.clock.get_timestamp() - signed_at <= self.expires_in:
                return claims
            self.verified.pop(token, None)  # expired: _verify says so
        claims = self._verify(token)
        with self.lock:
            if len(self.verified) >= self.max_entries:
                del self.verified[next(iter(self.verified))]
            self.verified[token] = (claims, int(claims.issued_at.timestamp()))
        return claims

    def _verify(self, token: str) -> TokenClaims:
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
        if not 1 <= claims.user_id <= MAX_ID or abs(claims.generation) > MAX_ID:
            # Only a holder of the secret could sign these; still no id PostgreSQL refuses.
            raise AuthenticationFailed("the token is not valid")
        return claims


@implementer(IRevocations)
class DatabaseRevocations:
    """Revoked token ids in the ``revoked_tokens`` table (the default).

    Every process that shares the database sees a revocation once the revoking request's
    transaction commits. Rows of tokens that have expired anyway are purged at each revoke.
    """

    def __init__(self, registry):
        pass

    def revoke(self, request, token_id: str, expires_at: dt.datetime) -> None:
        session = request.dbsession
        table = RevokedToken.__table__
        now = utcnow()
        session.execute(delete(table).where(table.c.expires_at <= now))
        if expires_at <= now:
            return
        values = {"token_id": token_id, "expires_at": expires_at}
        dialect = session.get_bind().dialect.name
        if dialect in INSERT_IGNORING_DUPLICATES:
            # Two concurrent revocations of one token both succeed (no unique violation).
            insert = INSERT_IGNORING_DUPLICATES[dialect]
            session.execute(insert(table).values(values).on_conflict_do_nothing())
        elif session.get(RevokedToken, token_id) is None:
            session.add(RevokedToken(**values))

    def is_revoked(self, request, token_id: str) -> bool:
        found = request.dbsession.execute(
            select(self.revoked_clause()), {"token_id": token_id, "now": utcnow()}
        ).scalar()
        return bool(found)

    @staticmethod
    def revoked_clause():
        """``is_revoked`` as an SQL expression, with bind parameters ``token_id`` and ``now``.

        The bearer scheme asks it in the statement that reads the token's user, so that a
        request pays one round trip to the database for both (hyperapi.security.bearer).
        """
        table = RevokedToken.__table__
        return exists().where(
            table.c.token_id == bindparam("token_id"), table.c.expires_at > bindparam("now")
        )


INSERT_IGNORING_DUPLICATES = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@implementer(IRevocations)
class RedisRevocations:
    """Revoked token ids as Redis keys that expire with the token.

    Chosen with ``hyperapi.auth.revocations = redis``; the server is ``hyperapi.redis.url``.
    A revocation is visible to every process at once (it does not wait for the request's
    transaction). When Redis cannot be reached, bearer requests get 503 rather than trust a
    token that may have been revoked; ``hyperapi.auth.revocations_fail_open = true`` accepts
    such tokens unchecked instead (availability over revocation, for deployments whose
    tokens are short-lived). A revocation that cannot be stored is always a 503: the client
    must not be told that its token is dead while it still works.
    """

    def __init__(self, registry):
        import redis

        url = registry.settings["hyperapi.redis.url"]
        if not url:
            raise ConfigurationError("hyperapi.auth.revocations = redis needs hyperapi.redis.url")
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = registry.settings["hyperapi.auth.revocations_key_prefix"]
        self.errors = (redis.RedisError,)
        self.fail_open = registry.settings.get("hyperapi.auth.revocations_fail_open", False)
        # An outage fails every bearer request: one warning a minute says so.
        self.warnings = Throttle(60)

    def revoke(self, request, token_id: str, expires_at: dt.datetime) -> None:
        ttl = math.ceil((expires_at - utcnow()).total_seconds())
        if ttl > 0:
            try:
                self.client.set(self.prefix + token_id, b"1", ex=ttl)
            except self.errors as exc:
                raise self.unavailable(exc, "Tokens cannot be revoked") from None

    def is_revoked(self, request, token_id: str) -> bool:
        try:
            return bool(self.client.exists(self.prefix + token_id))
        except self.errors as exc:
            if not self.fail_open:
                raise self.unavailable(exc, "Bearer tokens cannot be checked") from None
            if self.warnings.admit() is not None:
                log.warning(
                    "revocations: Redis does not answer (%s); accepting tokens unchecked",
                    type(exc).__name__,
                )
            return False

    def unavailable(self, exc: Exception, what: str) -> Problem:
        """503: the revocation list cannot be read or written just now."""
        if self.warnings.admit() is not None:
            log.warning("revocations: Redis does not answer (%s); 503", type(exc).__name__)
        return Problem(
            "service-unavailable",
            f"{what} just now; retry in {RETRY_AFTER} seconds.",
            headers={"Retry-After": str(RETRY_AFTER)},
        )

    def check(self) -> bool:
        """Whether Redis answers (for ``/__heartbeat__``)."""
        try:
            return bool(self.client.ping())
        except self.errors as exc:
            log.warning("revocations: Redis does not answer: %s", type(exc).__name__)
            return False

    def close(self) -> None:
        self.client.close()


@implementer(IRevocations)
class MemoryRevocations:
    """Revoked token ids in this process's memory: for tests and single-process servers.

    Other processes do not see these revocations; use ``database`` or ``redis`` whenever
    more than one process serves the API.
    """

    def __init__(self, registry=None, clock=utcnow):
        self.clock = clock
        self.revoked: dict[str, dt.datetime] = {}
        self.lock = threading.Lock()

    def revoke(self, request, token_id: str, expires_at: dt.datetime) -> None:
        with self.lock:
            now = self.clock()
            for expired in [k for k, until in self.revoked.items() if until <= now]:
                del self.revoked[expired]
            if expires_at > now:
                self.revoked[token_id] = expires_at

    def is_revoked(self, request, token_id: str) -> bool:
        with self.lock:
            until = self.revoked.get(token_id)
            return until is not None and until > self.clock()
