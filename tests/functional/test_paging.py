"""Collections: page numbers, keyset cursors, filters, sort, totals and links."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from hyperapi.models import Student
from hyperapi.models.collections import bump
from hyperapi.models.meta import utcnow


def path(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def students(app, testapp):
    """250 students named so that sorting by name differs from sorting by id."""
    now = utcnow()
    rows = [
        {"name": f"student {(i * 7919) % 250:03d}", "version": 1, "updated_at": now}
        for i in range(250)
    ]
    with app.registry.database.write_sessions() as session, session.begin():
        session.execute(sa.insert(Student.__table__), rows)
        bump(session, "students", len(rows))
    return rows


def walk(testapp, href, headers, rel="next"):
    pages = []
    while href:
        response = testapp.get(path(href), headers=headers)
        pages.append(response)
        href = response.json["_links"].get(rel, {}).get("href")
    return pages


def test_next_links_yield_every_student_exactly_once_in_order(testapp, students, alice):
    pages = walk(testapp, "/api/v1/students?per_page=20", alice["auth"])
    ids = [item["id"] for page in pages for item in page.json["items"]]
    assert ids == list(range(1, 251))
    assert len(pages) == 13
    assert "next" not in pages[-1].json["_links"]
    assert "prev" not in pages[0].json["_links"]
    assert all(page.json["_meta"]["total"] == 250 for page in pages)


def test_next_links_follow_a_sort_order_and_prev_links_walk_back(testapp, students, alice):
    pages = walk(testapp, "/api/v1/students?sort=-name&per_page=30", alice["auth"])
    names = [item["name"] for page in pages for item in page.json["items"]]
    assert names == sorted((r["name"] for r in students), reverse=True)
    back = walk(testapp, pages[-1].json["_links"]["prev"]["href"], alice["auth"], rel="prev")
    back_names = [item["name"] for page in reversed(back) for item in page.json["items"]]
    assert back_names == names[: len(back_names)]
    assert len(back_names) + len(pages[-1].json["items"]) == 250


def test_last_link_gives_the_final_page(testapp, students, alice):
    first = testapp.get("/api/v1/students?per_page=40", headers=alice["auth"])
    last = testapp.get(path(first.json["_links"]["last"]["href"]), headers=alice["auth"])
    assert [i["id"] for i in last.json["items"]] == list(range(211, 251))
    assert "next" not in last.json["_links"]
    assert "prev" in last.json["_links"]


def test_page_numbers_give_random_access(testapp, students, alice):
    response = testapp.get("/api/v1/students?page=3&per_page=25", headers=alice["auth"])
    assert [i["id"] for i in response.json["items"]] == list(range(51, 76))
    assert response.json["_meta"] == {"total": 250, "per_page": 25, "page": 3}
    # From a numbered page, next continues with a cursor right after it.
    after = testapp.get(path(response.json["_links"]["next"]["href"]), headers=alice["auth"])
    assert after.json["items"][0]["id"] == 76
    beyond = testapp.get("/api/v1/students?page=99", headers=alice["auth"])
    assert beyond.json["items"] == []
    assert "next" not in beyond.json["_links"]


def test_default_page_size_is_25_and_link_header_repeats_the_links(testapp, students, alice):
    response = testapp.get("/api/v1/students", headers=alice["auth"])
    assert len(response.json["items"]) == 25
    header = response.headers["Link"]
    for rel, link in response.json["_links"].items():
        assert f'<{link["href"]}>; rel="{rel}"' in header


def test_filters_and_totals(testapp, students, alice):
    response = testapp.get("/api/v1/students?name=student%20007", headers=alice["auth"])
    assert [i["name"] for i in response.json["items"]] == ["student 007"]
    assert response.json["_meta"]["total"] == 1
    none = testapp.get("/api/v1/students?name=nobody", headers=alice["auth"])
    assert none.json["items"] == [] and none.json["_meta"]["total"] == 0


def test_a_cursor_keeps_its_filters_and_sort(testapp, students, alice):
    first = testapp.get("/api/v1/students?sort=-id&per_page=10", headers=alice["auth"])
    next_href = first.json["_links"]["next"]["href"]
    assert set(parse_qs(urlsplit(next_href).query)) == {"cursor", "per_page"}
    second = testapp.get(path(next_href), headers=alice["auth"])
    assert [i["id"] for i in second.json["items"]] == list(range(240, 230, -1))


def test_items_carry_their_own_etag(testapp, students, alice):
    response = testapp.get("/api/v1/students?per_page=2", headers=alice["auth"])
    for item in response.json["items"]:
        single = testapp.get(path(item["_links"]["self"]["href"]), headers=alice["auth"])
        assert item["_etag"] == single.headers["ETag"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("per_page=0", "per_page"),
        ("per_page=1000", "per_page"),
        ("per_page=-5", "per_page"),
        ("per_page=ten", "per_page"),
        ("page=-1", "page"),
        ("page=0", "page"),
        ("page=1.5", "page"),
        ("page=99999999999999999999", "page"),
        ("sort=nosuchfield", "sort"),
        ("sort=name,name", "sort"),
        ("sort=", "sort"),
        ("nosuchfilter=1", "nosuchfilter"),
        ("cursor=garbage", "cursor"),
        ("name=a&name=b", "name"),
    ],
)
def test_bad_paging_parameters_are_400_problems(testapp, students, alice, query, name):
    response = testapp.get(f"/api/v1/students?{query}", headers=alice["auth"], status=400)
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == 400
    assert name in [e["name"] for e in response.json["errors"]]
    assert all(e["location"] == "querystring" for e in response.json["errors"])


def test_a_tampered_cursor_is_a_400(testapp, students, alice):
    first = testapp.get("/api/v1/students?per_page=10", headers=alice["auth"])
    cursor = parse_qs(urlsplit(first.json["_links"]["next"]["href"]).query)["cursor"][0]
    payload, _, signature = cursor.partition(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    response = testapp.get(f"/api/v1/students?cursor={forged}", headers=alice["auth"], status=400)
    assert response.json["errors"][0]["name"] == "cursor"


def test_a_cursor_cannot_be_mixed_with_other_paging_parameters(testapp, students, alice):
    first = testapp.get("/api/v1/students?per_page=10", headers=alice["auth"])
    href = path(first.json["_links"]["next"]["href"])
    response = testapp.get(href + "&sort=name", headers=alice["auth"], status=400)
    assert response.json["errors"][0]["name"] == "sort"


def test_a_cursor_of_another_collection_is_refused(testapp, students, alice):
    testapp.get("/api/v1/users", headers=alice["auth"])
    first = testapp.get("/api/v1/students?sort=name&per_page=10", headers=alice["auth"])
    cursor = parse_qs(urlsplit(first.json["_links"]["next"]["href"]).query)["cursor"][0]
    # users cannot be sorted by name: the cursor's sort order is checked, not trusted.
    testapp.get(f"/api/v1/users?cursor={cursor}", headers=alice["auth"], status=400)
