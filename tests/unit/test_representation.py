"""Representation helpers: the HTTP date of Last-Modified (the same text as WebOb's), Vary."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from pyramid.response import Response
from webob.datetime_utils import serialize_date

from hyperapi.resources.representation import add_vary, http_date


def test_http_date_writes_what_webob_writes_for_any_instant():
    rng = random.Random(20261121)
    start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    instants = [start + dt.timedelta(seconds=rng.uniform(0, 4e9)) for _ in range(2000)]
    # Every weekday and month, leap days, the ends of days and years.
    instants += [dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC)]
    instants += [dt.datetime(2026, m, 1, tzinfo=dt.UTC) for m in range(1, 13)]
    for instant in instants:
        assert http_date(instant) == serialize_date(instant), instant


def test_http_date_converts_other_offsets_to_gmt():
    eastern = dt.timezone(dt.timedelta(hours=-5))
    assert http_date(dt.datetime(2026, 11, 21, 19, 30, tzinfo=eastern)) == (
        "Sun, 22 Nov 2026 00:30:00 GMT"
    )


@pytest.mark.parametrize(
    ("before", "names", "after"),
    [
        (None, ("Accept",), ["Accept"]),
        (None, ("Accept", "Authorization"), ["Accept, Authorization"]),
        ("Accept", ("Authorization",), ["Accept, Authorization"]),
        ("Accept", ("Accept",), ["Accept"]),
        # Field names are case-insensitive: no second "accept".
        ("accept, Origin", ("Accept", "Authorization"), ["accept, Origin, Authorization"]),
        (" Origin ", ("Accept",), ["Origin, Accept"]),
        ("", ("Accept",), ["Accept"]),
        # "*" already says the response varies with everything.
        ("*", ("Accept",), ["*"]),
    ],
)
def test_add_vary_names_each_field_once_in_order(before, names, after):
    response = Response(headerlist=[] if before is None else [("Vary", before)])
    add_vary(response, *names)
    assert response.headers.getall("Vary") == after


def test_add_vary_leaves_the_other_fields_and_their_order():
    response = Response(headerlist=[("ETag", '"1"'), ("Vary", "Accept"), ("X-A", "b")])
    add_vary(response, "Authorization")
    assert response.headerlist[:3] == [
        ("ETag", '"1"'),
        ("Vary", "Accept, Authorization"),
        ("X-A", "b"),
    ]
