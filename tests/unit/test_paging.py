"""Keyset paging: sort parsing, cursor signing and the keyset condition."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from hyperapi.resources import paging
from hyperapi.resources.paging import AFTER, BEFORE, CursorCodec, PageRequest, SortKey


def test_parse_sort_appends_id_as_a_tie_breaker_in_the_last_direction():
    assert paging.parse_sort("-name", ("id", "name")) == (
        SortKey("name", True),
        SortKey("id", True),
    )
    assert paging.parse_sort("name,-id", ("id", "name")) == (SortKey("name"), SortKey("id", True))


@pytest.mark.parametrize("text", ["nope", "name,name", "", "-", "name,"])
def test_parse_sort_refuses_unknown_or_repeated_fields(text):
    with pytest.raises(ValueError):
        paging.parse_sort(text, ("id", "name"))


def test_cursors_round_trip_with_datetimes_and_refuse_tampering():
    codec = CursorCodec("secret")
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    page = PageRequest(
        per_page=10, sort=(SortKey("timestamp"), SortKey("id")), filters={"author": 3}
    )
    token = codec.dumps(page, AFTER, (when, 42))
    payload = codec.loads(token)
    assert payload["d"] == AFTER
    assert [paging.decode_value(v) for v in payload["k"]] == [when, 42]
    assert payload["f"] == {"author": 3}
    with pytest.raises(paging.InvalidCursor):
        codec.loads(token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(paging.InvalidCursor):
        CursorCodec("another secret").loads(token)


@pytest.fixture
def rows():
    engine = sa.create_engine("sqlite://")
    metadata = sa.MetaData()
    table = sa.Table(
        "t", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String)
    )
    metadata.create_all(engine)
    names = ["b", "a", "c", "a", "b", "c", "a"]
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"id": i + 1, "name": n} for i, n in enumerate(names)])
    return engine, table


@pytest.mark.parametrize("sort_text", ["name", "-name", "name,-id", "-name,id", "id", "-id"])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_keyset_pages_forward_and_backward_match_the_full_order(rows, sort_text, size):
    engine, table = rows
    sort = paging.parse_sort(sort_text, ("id", "name"))
    columns = [table.c[key.name] for key in sort]
    with engine.connect() as connection:
        everything = connection.execute(
            sa.select(table).order_by(*paging.order_by(columns, sort))
        ).all()
        seen, boundary = [], None
        while True:
            stmt = sa.select(table).order_by(*paging.order_by(columns, sort)).limit(size)
            if boundary is not None:
                stmt = stmt.where(paging.keyset_condition(columns, sort, boundary, AFTER))
            page = connection.execute(stmt).all()
            if not page:
                break
            seen.extend(page)
            boundary = tuple(getattr(page[-1], key.name) for key in sort)
        assert seen == everything
        # And backwards from the end, reversed.
        back, boundary = [], None
        while True:
            stmt = sa.select(table).order_by(*paging.order_by(columns, sort, reverse=True))
            if boundary is not None:
                stmt = stmt.where(paging.keyset_condition(columns, sort, boundary, BEFORE))
            page = connection.execute(stmt.limit(size)).all()
            if not page:
                break
            back.extend(page)
            boundary = tuple(getattr(page[-1], key.name) for key in sort)
        assert list(reversed(back)) == everything
