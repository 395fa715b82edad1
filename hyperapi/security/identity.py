"""Who a request is from, once a scheme has verified it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyramid.authorization import Authenticated, Everyone
from sqlalchemy import bindparam, func, select

from ..models import User
from ..models.reads import FastSelect

ADMIN = "role:admin"


@dataclass(frozen=True)
class Identity:
    id: int
    username: str
    is_admin: bool
    #: The name of the scheme that verified the credentials.
    scheme: str
    #: Bearer tokens only: the token's id, and until when it is accepted (how long its
    #: revocation must be remembered).
    token_id: str | None = None
    token_accepted_until: dt.datetime | None = None

    @property
    def principals(self) -> list[str]:
        principals = [Everyone, Authenticated, f"user:{self.id}"]
        if self.is_admin:
            principals.append(ADMIN)
        return principals


class AuthenticationFailed(Exception):
    """Credentials were presented but do not verify; ``reason`` is safe to show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


USER_COLUMNS = (
    User.id,
    User.username,
    User.is_admin,
    User.password_hash,
    User.token_generation,
)


# Built once: constructing a statement costs more than executing a cached one.
USER_BY_ID = FastSelect(select(*USER_COLUMNS).where(User.id == bindparam("user_id")))
USER_BY_NAME = FastSelect(
    select(*USER_COLUMNS).where(func.lower(User.username) == bindparam("username"))
)


def read_user(request, select: FastSelect, params: dict):
    """``select``'s user row, or None; a GET of an item reads the item in the same statement.

    Every scheme that reads its user from the database reads it here, so that an item's
    GET costs one round trip whatever the credentials (hyperapi.resources.prefetch).
    """
    prefetch = getattr(request.registry, "item_prefetch", None)
    target = prefetch.target(request) if prefetch is not None else None
    if target is None:
        return select.first(request.dbconnection, params)
    return prefetch.read(request, select.statement, params, target)


def user_by_id(request, user_id: int):
    return read_user(request, USER_BY_ID, {"user_id": user_id})


def user_by_name(request, username: str):
    return read_user(request, USER_BY_NAME, {"username": username.lower()})
