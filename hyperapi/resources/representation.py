"""Responses that carry a representation: media type, JSON bytes and validators.

One place decides the bytes a client receives, so one place can say what they depend on:
the ETag of a representation is computed here from the row's version (or the collection's
state) and from everything else that changes those bytes, namely the media type and the
viewer's variant (a user's own record shows ``email``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from pyramid.response import Response

JSON = "application/json"
HAL_JSON = "application/hal+json"
OFFERS = (JSON, HAL_JSON)


#: Where a request's media type is kept: the ETag, the body and the 304 all ask for it.
MEDIA_TYPE_KEY = "hyperapi.media_type"


def media_type(request) -> str:
    """The representation's media type: HAL when the client prefers it, else JSON."""
    environ = request.environ
    chosen = environ.get(MEDIA_TYPE_KEY)
    if chosen is None:
        accept = request.accept
        offers = accept.acceptable_offers(OFFERS) if accept else None
        chosen = environ[MEDIA_TYPE_KEY] = offers[0][0] if offers else JSON
    return chosen


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(*parts: Any) -> str:
    """A short, stable digest of ``parts`` (not a secret; only has to differ when they do)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def item_etag(version: int, variant: str, media: str) -> str:
    """Strong ETag of one item: its row version, plus what else changes its bytes."""
    suffix = "" if (variant == "" and media == JSON) else "-" + digest(variant, media)
    return f'"{version}{suffix}"'


def collection_etag(parts: Iterable[Any]) -> str:
    return '"c' + digest(*parts) + '"'


def content_etag(body: bytes, content_type: str | None) -> str:
    """Strong ETag of a document that is the same for everyone: a digest of its bytes.

    The media type is part of it: the same bytes as JSON and as HAL are two
    representations, which RFC 9110 §8.8.3 wants told apart.
    """
    hashed = hashlib.blake2b((content_type or "").encode() + b"\n", digest_size=12)
    hashed.update(body)
    return '"b' + hashed.hexdigest() + '"'


def respond(
    request,
    data: Any,
    *,
    status: int = 200,
    etag: str | None = None,
    last_modified: dt.datetime | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = Response(
        body=dumps(data), status=status, content_type=media_type(request), charset=None
    )
    if etag is not None:
        response.headers["ETag"] = etag
    if last_modified is not None:
        response.last_modified = last_modified
    if headers:
        response.headers.update(headers)
    return response


def no_content(request, headers: dict[str, str] | None = None) -> Response:
    response = Response(status=204)
    del response.content_type
    if headers:
        response.headers.update(headers)
    return response


#: What a 304 keeps of the 200 it stands for (RFC 9110 §15.4.5: the fields a 200 would
#: have carried that caches use to update what they stored).
NOT_MODIFIED_FIELDS = frozenset(
    ("cache-control", "content-location", "date", "etag", "expires", "last-modified", "vary")
)


def not_modified(
    etag: str | None = None,
    last_modified: dt.datetime | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """A 304: no body, no Content-Type, and the validators and caching fields of ``headers``.

    ``headers`` are those of the full response (when there is one) whose kept fields are
    copied; ``etag`` and ``last_modified`` are used when it has none.
    """
    response = Response(status=304)
    del response.content_type
    del response.content_length
    for name, value in headers:
        if name.lower() in NOT_MODIFIED_FIELDS:
            response.headers.add(name, value)
    if etag is not None and "ETag" not in response.headers:
        response.headers["ETag"] = etag
    if last_modified is not None and "Last-Modified" not in response.headers:
        response.last_modified = last_modified
    return response
