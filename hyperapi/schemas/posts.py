"""Bodies of posts."""

from __future__ import annotations

import colander

from .types import Mapping, String

READ_ONLY = ("id", "_links", "_etag", "author", "timestamp", "version", "updated_at")


class PostBody(colander.MappingSchema):
    body = colander.SchemaNode(String(), validator=colander.Length(1, 10000))


def post_body() -> colander.SchemaNode:
    return PostBody(Mapping(read_only=READ_ONLY))
