"""Bearer tokens in the Authorization header (RFC 6750)."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from zope.interface import implementer

from ..interfaces import IAuthenticationScheme
from ..models import User
from ..models.meta import utcnow
from ..models.reads import FastSelect
from .identity import USER_COLUMNS, AuthenticationFailed, Identity, read_user, remembered
from .policy import FAILURE, quoted


@implementer(IAuthenticationScheme)
class BearerScheme:
    name = "bearer"
    vary = ("Authorization",)

    def __init__(self, registry):
        self.realm = registry.settings["hyperapi.auth.realm"]
        self.registry = registry
        # A store that can say "revoked" in SQL (the database one) is asked in the same
        # statement as the user row: one round trip per request instead of two.
        revoked = getattr(registry.revocations, "revoked_clause", None)
        self.revocation_in_sql = revoked is not None
        columns = (*USER_COLUMNS, revoked().label("revoked")) if revoked else USER_COLUMNS
        self.user_select = remembered(
            FastSelect(select(*columns).where(User.id == bindparam("user_id")))
        )

    def identify(self, request) -> Identity | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token:
            raise AuthenticationFailed("the Bearer token is missing")
        claims = self.registry.tokens.verify(token)
        # Asked of the database, or (reads, with the row cache) of memory that the database
        # keeps in step: a revocation or a password change made by any process is seen by
        # every process at once, or within the row cache's max_staleness
        # (hyperapi.models.changes); a write always asks the database.
        params = {"user_id": claims.user_id}
        if self.revocation_in_sql:
            params.update(token_id=claims.token_id, now=utcnow())
        user = read_user(request, self.user_select, params)
        revoked = (user is not None and bool(user.revoked)) if self.revocation_in_sql else None
        if user is None or user.token_generation != claims.generation:
            # The user is gone, or changed their password after the token was issued.
            raise AuthenticationFailed("the token has been revoked")
        if revoked is None:
            revoked = self.registry.revocations.is_revoked(request, claims.token_id)
        if revoked:
            raise AuthenticationFailed("the token has been revoked")
        return Identity(
            id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            scheme=self.name,
            token_id=claims.token_id,
            token_accepted_until=claims.accepted_until,
        )

    def challenge(self, request) -> str:
        realm = f"Bearer realm={quoted(self.realm)}"
        failure = request.environ.get(FAILURE)
        if failure and failure[0] == self.name:
            # RFC 6750 §3.1: say why a presented token was refused.
            return f'{realm}, error="invalid_token", error_description={quoted(failure[1])}'
        return realm
