"""Who may do what: the contexts of routes, each with its ACL.

Permissions: ``view`` (read anything: any authenticated user), ``register`` (create an
account: anyone), ``create`` (write a post: any authenticated user), ``edit`` (change or
delete: the owner), ``follow`` (follow or unfollow as this user: that user only, not even
an admin) and ``manage`` (write classroom records: admins). Admins hold every permission
except ``follow``.
"""

from __future__ import annotations

from pyramid.authorization import ALL_PERMISSIONS, Allow, Authenticated, Deny, Everyone
from sqlalchemy import bindparam, select

from ..models import Post
from ..resources.prefetch import NOT_PREFETCHED, prefetched
from ..schemas.types import parse_id
from .identity import ADMIN

BASE_ACL = [
    (Allow, Everyone, "register"),
    (Allow, Authenticated, ("view", "create")),
    (Deny, Everyone, "follow"),
    (Allow, ADMIN, ALL_PERMISSIONS),
]


def _owner_id(request) -> int | None:
    # The one id parser: a number beyond the id column's range names no one, and must not
    # reach a query (PostgreSQL refuses it with an error, which would be a 500).
    return parse_id(request.matchdict.get("id", ""))


AUTHOR = select(Post.author_id).where(Post.id == bindparam("id"))


class Root:
    """Anything without an owner: collections, classroom records, the API itself."""

    def __init__(self, request):
        self.request = request

    @property
    def __acl__(self):
        return BASE_ACL


class UserContext(Root):
    """A user, who alone (with admins) edits their account and alone follows as them."""

    @property
    def __acl__(self):
        owner = _owner_id(self.request)
        if owner is None:
            return BASE_ACL
        return [(Allow, f"user:{owner}", ("edit", "follow")), *BASE_ACL]


class PostContext(Root):
    """A post, which its author (and admins) may edit or delete."""

    @property
    def __acl__(self):
        post_id = _owner_id(self.request)
        author = None
        if post_id is not None:
            # A GET's post came with the credentials' user (hyperapi.resources.prefetch).
            row = prefetched(self.request, Post.__table__, post_id)
            if row is NOT_PREFETCHED:
                author = self.request.dbconnection.execute(AUTHOR, {"id": post_id}).scalar()
            elif row is not None:
                author = row.author_id
        if author is None:
            # No such post: any authenticated user may get as far as its 404.
            return [(Allow, Authenticated, "edit"), *BASE_ACL]
        return [(Allow, f"user:{author}", "edit"), *BASE_ACL]


FACTORIES = {
    "users.item": UserContext,
    "users.follow": UserContext,
    "posts.item": PostContext,
}
