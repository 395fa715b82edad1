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


def add_vary(response: Response, *names: str) -> None:
    """Name ``names`` in ``Vary`` (RFC 9110 §12.5.5) unless it already does, in order.

    Field names are compared without regard to case, and ``Vary: *`` already names
    everything. The header list is edited in place: WebOb's ``response.vary`` parses the
    field and writes it back through a search of the list, on every response.
    """
    headerlist = response.headerlist
    for index, (field, value) in enumerate(headerlist):
        if field.lower() == "vary":
            named = {name.strip().lower() for name in value.split(",")}
            missing = [name for name in names if name.lower() not in named]
            if missing and "*" not in named:
                value = value.strip()
                headerlist[index] = (field, ", ".join([value, *missing] if value else missing))
            return
    headerlist.append(("Vary", ", ".join(names)))


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


#: IMF-fixdate's names (RFC 9110 §5.6.7), spelled out: strftime's %a and %b follow the locale.
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(value: dt.datetime) -> str:
    """``value`` as an HTTP date (RFC 9110 §5.6.7 IMF-fixdate), e.g. for Last-Modified.

    What ``webob.datetime_utils.serialize_date`` writes, without its detour through a time
    tuple and ``email.utils``: it ran on every response that carries a Last-Modified.
    """
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return (
        f"{DAYS[value.weekday()]}, {value.day:02d} {MONTHS[value.month - 1]} {value.year:04d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} GMT"
    )


def respond(
    request,
    data: Any,
    *,
    status: int = 200,
    etag: str | None = None,
    last_modified: dt.datetime | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    # The header list is given whole: WebOb then adds only Content-Length, where setting
    # each field after the fact searches the list every time.
    headerlist = [("Content-Type", media_type(request))]
    if etag is not None:
        headerlist.append(("ETag", etag))
    if last_modified is not None:
        headerlist.append(("Last-Modified", http_date(last_modified)))
    response = Response(body=dumps(data), status=status, headerlist=headerlist)
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
    kept = [(name, value) for name, value in headers if name.lower() in NOT_MODIFIED_FIELDS]
    names = {name.lower() for name, _ in kept}
    if etag is not None and "etag" not in names:
        kept.append(("ETag", etag))
    if last_modified is not None and "last-modified" not in names:
        kept.append(("Last-Modified", http_date(last_modified)))
    # A header list given whole: no Content-Type, no Content-Length, an empty body.
    return Response(status=304, headerlist=kept)
