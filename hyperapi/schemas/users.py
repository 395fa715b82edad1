"""Bodies of users."""

from __future__ import annotations

import re

import colander

from .types import Mapping, String

READ_ONLY = (
    "id",
    "_links",
    "_etag",
    "is_admin",
    "password_hash",
    "last_seen",
    "member_since",
    "post_count",
    "follower_count",
    "followed_count",
    "version",
    "updated_at",
)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Deliberately loose (RFC 5322 is not a regular language): one @, a dot in the domain.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _normalise_email(value):
    return value.lower() if isinstance(value, str) else value


class UserBody(colander.MappingSchema):
    username = colander.SchemaNode(
        String(),
        validator=colander.All(
            colander.Length(1, 64),
            colander.Regex(USERNAME, "may use letters, digits, '.', '_' and '-' only"),
        ),
    )
    email = colander.SchemaNode(
        String(),
        preparer=_normalise_email,
        validator=colander.All(
            colander.Length(3, 254), colander.Regex(EMAIL, "is not an email address")
        ),
    )
    # Write-only: hashed on the way in, never represented.
    password = colander.SchemaNode(String(), validator=colander.Length(8, 256), write_only=True)
    about_me = colander.SchemaNode(String(), validator=colander.Length(0, 2000), missing="")


class UserReplaceBody(UserBody):
    # A PUT replaces the representation; the password is not part of it, so it may stay.
    password = colander.SchemaNode(
        String(), validator=colander.Length(8, 256), missing=colander.drop, write_only=True
    )


def user_body() -> colander.SchemaNode:
    return UserBody(Mapping(read_only=READ_ONLY))


def user_replace_body() -> colander.SchemaNode:
    return UserReplaceBody(Mapping(read_only=READ_ONLY))
