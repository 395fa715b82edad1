"""Bearer tokens in the Authorization header (RFC 6750)."""

from __future__ import annotations

from zope.interface import implementer

from ..interfaces import IAuthenticationScheme
from .identity import AuthenticationFailed, Identity, user_by_id
from .policy import FAILURE, quoted


@implementer(IAuthenticationScheme)
class BearerScheme:
    name = "bearer"
    vary = ("Authorization",)

    def __init__(self, registry):
        self.realm = registry.settings["hyperapi.auth.realm"]
        self.registry = registry

    def identify(self, request) -> Identity | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token:
            raise AuthenticationFailed("the Bearer token is missing")
        claims = self.registry.tokens.verify(token)
        user = user_by_id(request, claims.user_id)
        if user is None or user.token_generation != claims.generation:
            # The user is gone, or changed their password after the token was issued.
            raise AuthenticationFailed("the token has been revoked")
        if self.registry.revocations.is_revoked(request, claims.token_id):
            raise AuthenticationFailed("the token has been revoked")
        return Identity(
            id=user.id,
            username=user.username,
            is_admin=user.is_admin,
            scheme=self.name,
            token_id=claims.token_id,
            token_expires=claims.expires_at,
        )

    def challenge(self, request) -> str:
        realm = f"Bearer realm={quoted(self.realm)}"
        failure = request.environ.get(FAILURE)
        if failure and failure[0] == self.name:
            # RFC 6750 §3.1: say why a presented token was refused.
            return f'{realm}, error="invalid_token", error_description={quoted(failure[1])}'
        return realm
