"""Conditional requests: the one precondition evaluator (RFC 9110 §13).

Pure functions, no Pyramid and no database: :class:`Conditions` is what a request asks
(its four precondition header fields, parsed), :class:`Validators` is what the server holds
(the selected representation's ETag and Last-Modified, or nothing when there is no current
representation), and :func:`evaluate` applies RFC 9110 §13.2.2 to the two and returns an
:class:`Outcome`. The read tween (hyperapi.tweens.conditional), the views' early read check
and the write path all call :func:`evaluate`; nothing else compares validators.

Malformed field values are not errors (a 500 would be wrong and a 400 would break clients
behind sloppy proxies); each is read as the RFC says or, where it is silent, in the way that
cannot do harm:

- ``If-Modified-Since`` / ``If-Unmodified-Since`` that are not one valid HTTP-date are
  ignored (RFC 9110 §13.1.3, §13.1.4 say so).
- ``If-Match`` that does not parse matches nothing: the condition is false and the request
  gets 412. A guarded write is never performed on a guard the server cannot read.
- ``If-None-Match`` that does not parse cannot be shown false for GET/HEAD, so the full
  representation is sent (a 304 there could hide a change); for any other method it fails
  (412), like ``If-Match``, for the same reason.

Whether preconditions apply at all is the caller's decision: RFC 9110 §13.2.1 says they are
ignored when the unconditional answer would not be 2xx (a 404, a 401, a 400), so callers
evaluate them only once the resource has been found and the request authorised.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: The header fields this module reads.
FIELDS = ("If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since")

#: The reads: a false precondition answers them 304, anything else 412 (RFC 9110 §13.2.2).
READS = frozenset(("GET", "HEAD"))

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE,
# etagc = %x21 / %x23-7E / obs-text (obs-text = %x80-FF, here any non-ASCII character).
_ENTITY_TAG = re.compile(r'(W/)?("[\x21\x23-\x7e\x80-\uffff]*")')
# RFC 9110 §5.6.1: list elements are separated by commas with optional whitespace, and
# empty elements are allowed (and ignored).
_LIST_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")


class Outcome(enum.Enum):
    """What to do with a request once its preconditions are evaluated."""

    #: Perform the method (every precondition held, or none applied).
    PROCEED = "proceed"
    #: 304: the client's stored representation is current (GET/HEAD only).
    NOT_MODIFIED = "not-modified"
    #: 412: a precondition is false.
    FAILED = "failed"


@dataclass(frozen=True)
class EntityTag:
    opaque: str
    weak: bool = False

    def __str__(self) -> str:
        return ("W/" if self.weak else "") + self.opaque


class Malformed:
    """The value of an entity-tag field that does not follow the grammar."""

    def __repr__(self) -> str:
        return "MALFORMED"


#: ``*`` in If-Match / If-None-Match: "any current representation".
ANY = "*"
MALFORMED = Malformed()

TagList = tuple[EntityTag, ...] | str | Malformed | None


def parse_entity_tag(value: str) -> EntityTag | None:
    """One entity-tag (an ETag field value), or None when it is not one."""
    match = _ENTITY_TAG.fullmatch(value.strip())
    if match is None:
        return None
    return EntityTag(match.group(2), weak=match.group(1) is not None)


def parse_tag_list(value: str | None) -> TagList:
    """``If-Match`` / ``If-None-Match``: None (absent), ANY, a tuple of tags, or MALFORMED.

    RFC 9110 §13.1.1: ``If-Match = "*" / #entity-tag``; a ``*`` mixed with tags, a tag
    without its quotes, or an empty field follows neither alternative.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if value == "*":
        return ANY
    tags = []
    for element in _LIST_SEPARATOR.split(value):
        if not element:
            continue  # RFC 9110 §5.6.1: recipients ignore empty list elements
        tag = parse_entity_tag(element)
        if tag is None:
            return MALFORMED
        tags.append(tag)
    return tuple(tags) if tags else MALFORMED


def strong_match(a: EntityTag, b: EntityTag) -> bool:
    # RFC 9110 §8.8.3.2: strong comparison: neither is weak and the opaque-tags are equal.
    return not a.weak and not b.weak and a.opaque == b.opaque


def weak_match(a: EntityTag, b: EntityTag) -> bool:
    # RFC 9110 §8.8.3.2: weak comparison: the opaque-tags are equal, weak or not.
    return a.opaque == b.opaque


# -- HTTP-date (RFC 9110 §5.6.7) --------------------------------------------------------

_MONTHS = {
    m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"(\d\d):(\d\d):(\d\d)"
# IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
_IMF_FIXDATE = re.compile(rf"{_DAY}, (\d\d) {_MONTH} (\d{{4}}) {_TIME} GMT")
# obsolete RFC 850 format: Sunday, 06-Nov-94 08:49:37 GMT
_RFC850 = re.compile(rf"{_LONG_DAY}, (\d\d)-{_MONTH}-(\d\d) {_TIME} GMT")
# obsolete asctime() format: Sun Nov  6 08:49:37 1994
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} ([ \d]\d) {_TIME} (\d{{4}})")


def parse_http_date(value: str | None, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """An aware UTC datetime, or None when ``value`` is not one HTTP-date.

    RFC 9110 §5.6.7: recipients accept all three formats; a two-digit RFC 850 year that
    would be more than 50 years in the future means the most recent past year with
    those digits.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    try:
        if match := _IMF_FIXDATE.fullmatch(value):
            day, month, year, hour, minute, second = match.groups()
        elif match := _ASCTIME.fullmatch(value):
            month, day, hour, minute, second, year = match.groups()
        elif match := _RFC850.fullmatch(value):
            day, month, short_year, hour, minute, second = match.groups()
            now = now or dt.datetime.now(dt.UTC)
            year = str(now.year - now.year % 100 + int(short_year))
            if int(year) > now.year + 50:
                year = str(int(year) - 100)
        else:
            return None
        return dt.datetime(
            int(year),
            _MONTHS[month],
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=dt.UTC,
        )
    except ValueError:  # 31 Feb, 25:00:00 and the like
        return None


def http_seconds(moment: dt.datetime) -> dt.datetime:
    """``moment`` at the one-second resolution of Last-Modified (RFC 9110 §8.8.2)."""
    return moment.astimezone(dt.UTC).replace(microsecond=0)


# -- the evaluator ----------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """The preconditions of one request, parsed."""

    if_match: TagList = None
    if_none_match: TagList = None
    #: None when absent *or* not a valid HTTP-date (both mean "ignore it").
    if_modified_since: dt.datetime | None = None
    if_unmodified_since: dt.datetime | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Conditions:
        return cls(
            if_match=parse_tag_list(headers.get("If-Match")),
            if_none_match=parse_tag_list(headers.get("If-None-Match")),
            if_modified_since=parse_http_date(headers.get("If-Modified-Since")),
            if_unmodified_since=parse_http_date(headers.get("If-Unmodified-Since")),
        )

    def __bool__(self) -> bool:
        return any(
            value is not None
            for value in (
                self.if_match,
                self.if_none_match,
                self.if_modified_since,
                self.if_unmodified_since,
            )
        )


@dataclass(frozen=True)
class Validators:
    """The validators of the selected representation: its strong ETag and Last-Modified."""

    etag: str | None
    last_modified: dt.datetime | None = None


def _if_match(tags: TagList, current: Validators | None) -> bool:
    # RFC 9110 §13.1.1: "*" is true when there is a current representation; a list is
    # true when one member matches the current ETag by strong comparison; anything else
    # (no current representation, no ETag, an unreadable field) is false.
    if current is None:
        return False
    if tags is ANY:
        return True
    etag = parse_entity_tag(current.etag) if current.etag else None
    if etag is None or isinstance(tags, Malformed):
        return False
    return any(strong_match(tag, etag) for tag in tags)


def _if_none_match(tags: TagList, current: Validators | None, safe: bool) -> bool:
    # RFC 9110 §13.1.2: "*" is false when there is a current representation; a list is
    # false when one member matches the current ETag by weak comparison.
    if isinstance(tags, Malformed):
        return safe  # see the module docstring
    if current is None:
        return True
    if tags is ANY:
        return False
    etag = parse_entity_tag(current.etag) if current.etag else None
    if etag is None:
        return True
    return not any(weak_match(tag, etag) for tag in tags)


def _if_unmodified_since(since: dt.datetime, current: Validators | None) -> bool:
    # RFC 9110 §13.1.4: false when the representation changed after the date; ignored (so
    # true) when there is no modification date to compare.
    if current is None or current.last_modified is None:
        return True
    return http_seconds(current.last_modified) <= since


def _if_modified_since(since: dt.datetime, current: Validators | None) -> bool:
    # RFC 9110 §13.1.3: false when the representation has not changed since the date.
    if current is None or current.last_modified is None:
        return True
    return http_seconds(current.last_modified) > since


def evaluate(method: str, conditions: Conditions, current: Validators | None) -> Outcome:
    """RFC 9110 §13.2.2, in its order, for a request whose unconditional answer is 2xx.

    ``current`` is None when the target has no current representation (a PUT that could
    create it, a POST's collection that is gone).
    """
    safe = method in READS
    # Step 1: If-Match; when false, 412.
    if conditions.if_match is not None:
        if not _if_match(conditions.if_match, current):
            return Outcome.FAILED
    # Step 2: only without If-Match, If-Unmodified-Since; when false, 412.
    elif conditions.if_unmodified_since is not None and not _if_unmodified_since(
        conditions.if_unmodified_since, current
    ):
        return Outcome.FAILED
    # Step 3: If-None-Match; when false, 304 for GET/HEAD and 412 for anything else.
    if conditions.if_none_match is not None:
        if not _if_none_match(conditions.if_none_match, current, safe):
            return Outcome.NOT_MODIFIED if safe else Outcome.FAILED
    # Step 4: only without If-None-Match, and for GET/HEAD only, If-Modified-Since; when
    # false, 304.
    elif (
        safe
        and conditions.if_modified_since is not None
        and not _if_modified_since(conditions.if_modified_since, current)
    ):
        return Outcome.NOT_MODIFIED
    # Step 5 (If-Range) does not apply: hyperapi serves no ranges. Step 6: proceed.
    return Outcome.PROCEED
