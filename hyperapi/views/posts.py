"""Posts: written by their author, who alone (with admins) may change them."""

from __future__ import annotations

from .. import links
from ..errors import Problem
from ..models import Post
from ..models.collections import bump
from ..resources import Resource, relation_service, services
from ..schemas.posts import post_body
from ..schemas.types import Reference, format_datetime
from .users import counter_change, posts_relation


def represent(request, row) -> dict:
    return {
        "id": row.id,
        "body": row.body,
        "timestamp": format_datetime(row.timestamp),
        "author": links.href(request, "users.item", id=row.author_id),
        "_links": {
            "self": links.link(request, "posts.item", id=row.id),
            "author": links.link(request, "users.item", id=row.author_id),
            "collection": links.link(request, "posts.collection"),
        },
    }


def create(request, data: dict) -> Post:
    identity = request.identity
    if identity is None:  # pragma: no cover - the view's permission requires a user
        raise Problem("unauthenticated", "Posts are written by an authenticated user.")
    counter_change(request.dbsession, [identity.id], "post_count", +1)
    bump(request.dbsession, "users")
    return Post(body=data["body"], author_id=identity.id)


def before_delete(request, post: Post) -> None:
    counter_change(request.dbsession, [post.author_id], "post_count", -1)
    bump(request.dbsession, "users")


posts = Resource(
    name="posts",
    title="post",
    model=Post,
    body=post_body(),
    represent=represent,
    filters={"author": ("author_id", Reference("users"))},
    sorts={"id": "id", "timestamp": "timestamp"},
    create=create,
    before_delete=before_delete,
)

SERVICES = [*services(posts), relation_service(posts_relation(posts))]
