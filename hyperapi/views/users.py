"""Users, who they follow, and their posts."""

from __future__ import annotations

from sqlalchemy import select, update

from .. import links
from ..errors import Problem
from ..models import Follow, Post, User
from ..models.collections import bump
from ..resources import Relation, Resource, Service, relation_service, services
from ..resources.preconditions import Validators
from ..resources.representation import item_etag, media_type, no_content
from ..resources.views import check_write, flush, load_instance, path_id, validator_headers
from ..schemas.types import String, format_datetime
from ..schemas.users import user_body, user_replace_body


def viewer_sees_private(request, row) -> bool:
    """A user's own record (and an admin's view of any) shows private fields."""
    identity = request.identity
    return identity is not None and (identity.id == row.id or identity.is_admin)


def variant(request, row) -> str:
    return "private" if viewer_sees_private(request, row) else ""


def represent(request, row) -> dict:
    data = {
        "id": row.id,
        "username": row.username,
        "about_me": row.about_me,
        "member_since": format_datetime(row.member_since),
        "last_seen": format_datetime(row.last_seen),
        "post_count": row.post_count,
        "follower_count": row.follower_count,
        "followed_count": row.followed_count,
    }
    data["_links"] = {
        "self": links.link(request, "users.item", id=row.id),
        "followers": links.link(request, "users.followers", id=row.id),
        "followed": links.link(request, "users.followed", id=row.id),
        "posts": links.link(request, "users.posts", id=row.id),
        "collection": links.link(request, "users.collection"),
    }
    if viewer_sees_private(request, row):
        data["email"] = row.email
        # PUT to follow the user whose id fills the template, DELETE to unfollow.
        data["_links"]["follow"] = links.templated_link(
            request, "users.follow", "other_id", id=row.id
        )
    return data


def create(request, data: dict) -> User:
    return User(
        username=data["username"],
        email=data["email"],
        about_me=data["about_me"],
        password_hash=request.passwords.hash(data["password"]),
    )


def apply(request, user: User, data: dict) -> None:
    for name in ("username", "email", "about_me"):
        if name in data:
            setattr(user, name, data[name])
    if "password" in data:
        user.password_hash = request.passwords.hash(data["password"])
        # Revokes every token issued before (security.tokens); the new hash no longer
        # matches cached Basic verifications (security.basic).
        user.token_generation += 1


def counter_change(session, user_ids, column: str, delta: int) -> None:
    """Adjust a denormalised counter of some users; their representations change with it."""
    table = User.__table__
    session.execute(
        update(table)
        .where(table.c.id.in_(user_ids))
        .values({column: table.c[column] + delta, "version": table.c.version + 1})
    )


def before_delete(request, user: User) -> None:
    """Deleting a user cascades to their posts and follows; keep every counter true."""
    session = request.dbsession
    follows = Follow.__table__
    followed = select(follows.c.followed_id).where(follows.c.follower_id == user.id)
    followers = select(follows.c.follower_id).where(follows.c.followed_id == user.id)
    counter_change(session, followed, "follower_count", -1)
    counter_change(session, followers, "followed_count", -1)
    if user.followed_count or user.follower_count:
        bump(session, "follows", -(user.followed_count + user.follower_count))
    if user.post_count:
        bump(session, "posts", -user.post_count)


users = Resource(
    name="users",
    title="user",
    model=User,
    body=user_body(),
    replace_body=user_replace_body(),
    represent=represent,
    filters={"username": ("username", String())},
    sorts={"id": "id", "username": "username", "member_since": "member_since"},
    create=create,
    update=apply,
    before_delete=before_delete,
    variant=variant,
    create_permission="register",
    conflict="A user with this username or email address already exists.",
)

followers = Relation(
    route="users.followers",
    parent=users,
    member=users,
    scope=lambda uid: User.__table__.c.id.in_(
        select(Follow.follower_id).where(Follow.followed_id == uid)
    ),
    depends=("follows",),
    total=lambda parent: parent.follower_count,
)

followed = Relation(
    route="users.followed",
    parent=users,
    member=users,
    scope=lambda uid: User.__table__.c.id.in_(
        select(Follow.followed_id).where(Follow.follower_id == uid)
    ),
    depends=("follows",),
    total=lambda parent: parent.followed_count,
)


# -- following --------------------------------------------------------------------------

follow_service = Service(
    name="users.follow",
    pyramid_route="users.follow",
    description="Whether one user follows another: PUT to follow, DELETE to unfollow.",
)


def _pair(request) -> tuple[int, int]:
    follower = path_id(request, users)
    other = path_id(request, users, "other_id")
    if follower == other:
        raise Problem(
            "validation",
            "A user cannot follow themself.",
            errors=[{"location": "path", "name": "other_id", "description": "is the user"}],
        )
    load_instance(request, users, follower)
    load_instance(request, users, other)
    return follower, other


def follow_validators(request, existing: Follow | None) -> Validators | None:
    """A follow's ETag and Last-Modified, so that its writes can be conditional too."""
    if existing is None:
        return None
    return Validators(item_etag(existing.version, "", media_type(request)), existing.updated_at)


def follow(request):
    """Idempotent: following someone already followed changes nothing.

    ``If-None-Match: *`` makes it "follow only if not yet following" (412 otherwise).
    """
    follower, other = _pair(request)
    session = request.dbsession
    existing = session.get(Follow, (follower, other))
    check_write(request, follow_validators(request, existing), required=existing is not None)
    if existing is None:
        existing = Follow(follower_id=follower, followed_id=other)
        session.add(existing)
        flush(request, users)
        counter_change(session, [follower], "followed_count", +1)
        counter_change(session, [other], "follower_count", +1)
        bump(session, "follows", +1)
        bump(session, "users")
    return no_content(request, headers=validator_headers(follow_validators(request, existing)))


def unfollow(request):
    follower, other = _pair(request)
    session = request.dbsession
    existing = session.get(Follow, (follower, other))
    check_write(request, follow_validators(request, existing), required=existing is not None)
    if existing is not None:
        session.delete(existing)
        flush(request, users)
        counter_change(session, [follower], "followed_count", -1)
        counter_change(session, [other], "follower_count", -1)
        bump(session, "follows", -1)
        bump(session, "users")
    return no_content(request)


follow_service.add_view("PUT", follow, permission="follow")
follow_service.add_view("DELETE", unfollow, permission="follow")


def posts_relation(posts_resource: Resource) -> Relation:
    return Relation(
        route="users.posts",
        parent=users,
        member=posts_resource,
        scope=lambda uid: Post.__table__.c.author_id == uid,
        total=lambda parent: parent.post_count,
    )


SERVICES = [
    *services(users),
    relation_service(followers),
    relation_service(followed),
    follow_service,
]
