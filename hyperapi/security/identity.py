"""Who a request is from, once a scheme has verified it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyramid.authorization import Authenticated, Everyone
from sqlalchemy import bindparam, func, select

from ..models import SAFE_METHODS, User
from ..models.changes import MISSING
from ..models.reads import FastSelect
from ..resources.prefetch import keep

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


def remembered(select: FastSelect) -> FastSelect:
    """Let reads take ``select``'s answers from memory (hyperapi.models.changes).

    Only for a statement that reads one ``users`` row and, given a ``token_id`` parameter,
    that token's revocation, and nothing else: those are the rows its answer depends on.
    """
    select.remembered = True
    return select


remembered(USER_BY_ID)
remembered(USER_BY_NAME)
#: Parameters that are not part of what is asked (the revocation's clock).
NOT_IN_KEY = frozenset(("now",))


def read_user(request, select: FastSelect, params: dict):
    """``select``'s user row, or None; a GET of an item reads the item in the same statement.

    Every scheme that reads its user from the database reads it here, so that an item's
    GET costs one round trip whatever the credentials (hyperapi.resources.prefetch), and
    none at all when the row cache is on and remembers the answer.
    """
    registry = request.registry
    prefetch = getattr(registry, "item_prefetch", None)
    target = prefetch.target(request) if prefetch is not None else None
    rows = registry.database.rows
    remember = rows is not None and getattr(select, "remembered", False)
    if not remember or request.method not in SAFE_METHODS:
        return _read(request, select, params, prefetch, target)[0]
    key = (
        select,
        *(value for name, value in params.items() if name not in NOT_IN_KEY),
        None if target is None else (target.table.name, target.ident),
    )
    found = rows.get(key)
    if found is not MISSING:
        user, item = found
        if target is not None:
            keep(request, target, item)
        return user
    snapshot = rows.snapshot()
    if snapshot is None:
        registry.database.listener.ensure_running()
    user, item = _read(request, select, params, prefetch, target)
    if user is not None and snapshot is not None:
        depends_on = [f"users {user.id}"]
        if "token_id" in params:
            depends_on.append(f"revoked_tokens {params['token_id']}")
        if target is not None:
            depends_on.append(f"{target.table.name} {target.ident}")
        rows.put(snapshot, key, (user, item), tuple(depends_on))
    return user


def _read(request, select: FastSelect, params: dict, prefetch, target):
    """(user row, item row) from the database; the item is None without a target."""
    if target is None:
        return select.first(request.dbconnection, params), None
    return prefetch.read(request, select.statement, params, target)


def user_by_id(request, user_id: int):
    return read_user(request, USER_BY_ID, {"user_id": user_id})


def user_by_name(request, username: str):
    return read_user(request, USER_BY_NAME, {"username": username.lower()})
