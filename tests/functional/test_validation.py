"""Bad input gets a clear 4xx problem and changes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import snapshot


@pytest.fixture
def student(testapp, admin):
    return testapp.post_json("/api/v1/students", {"name": "Ann"}, headers=admin["auth"]).json


BAD_BODIES = [
    pytest.param({"name": True}, 400, "name", id="bool-for-string"),
    pytest.param({"name": 5}, 400, "name", id="int-for-string"),
    pytest.param({"name": None}, 400, "name", id="null-for-string"),
    pytest.param({"name": ["x"]}, 400, "name", id="list-for-string"),
    pytest.param({"name": ""}, 400, "name", id="empty"),
    pytest.param({"name": "x" * 129}, 400, "name", id="too-long"),
    pytest.param({"name": "nul\u0000byte"}, 400, "name", id="nul-character"),
    pytest.param({"name": "x", "bogus": 1}, 400, "bogus", id="unknown-field"),
    pytest.param({"id": 5, "name": "x"}, 400, "id", id="read-only-id"),
    pytest.param({"name": "x", "_links": {}}, 400, "_links", id="read-only-links"),
    pytest.param({}, 400, "name", id="missing-field"),
    pytest.param([{"name": "x"}], 400, "", id="array-body"),
    pytest.param("x", 400, "", id="string-body"),
]


@pytest.mark.parametrize(("body", "status", "name"), BAD_BODIES)
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_bad_bodies_are_field_level_400s_and_change_nothing(
    app, testapp, admin, student, body, status, name, method
):
    before = snapshot(app)
    url = "/api/v1/students" if method == "POST" else f"/api/v1/students/{student['id']}"
    send = testapp.post_json if method == "POST" else testapp.put_json
    response = send(url, body, headers=admin["auth"], status=status)
    assert response.content_type == "application/problem+json"
    assert response.json["type"] == "/api/v1/problems/validation"
    assert {"location": "body", "name": name} in [
        {"location": e["location"], "name": e["name"]} for e in response.json["errors"]
    ]
    assert snapshot(app) == before


RAW_BODIES = [
    pytest.param(b"{bad", "application/json", 400, id="invalid-json"),
    pytest.param(b'{"name": "a", "name": "b"}', "application/json", 400, id="duplicate-key"),
    pytest.param(b'{"name": NaN}', "application/json", 400, id="nan"),
    pytest.param(b'{"name": "\xff\xfe"}', "application/json", 400, id="invalid-utf8"),
    pytest.param(b"[" * 100 + b"]" * 100, "application/json", 400, id="deep-nesting"),
    pytest.param(b'{"name": "x"}', "text/plain", 415, id="text-plain"),
    pytest.param(b'{"name": "x"}', "application/x-www-form-urlencoded", 415, id="form"),
    pytest.param(b'{"name": "x"}', "application/json; charset=latin-1", 415, id="latin-1"),
    pytest.param(b'{"name": "x"}', "", 415, id="no-content-type"),
    pytest.param(b"", "application/json", 400, id="empty-body"),
    pytest.param(
        b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}',
        "application/json",
        413,
        id="ten-megabytes",
    ),
]


@pytest.mark.parametrize(("raw", "content_type", "status"), RAW_BODIES)
def test_bad_raw_bodies_are_4xx_problems_and_change_nothing(
    app, testapp, admin, student, raw, content_type, status
):
    before = snapshot(app)
    headers = dict(admin["auth"])
    if content_type:
        headers["Content-Type"] = content_type
    response = testapp.post("/api/v1/students", raw, headers=headers, status=status)
    assert response.content_type == "application/problem+json"
    assert response.json["status"] == status
    assert snapshot(app) == before


def test_patch_accepts_merge_patch_and_null_resets_an_optional_field(testapp, alice):
    auth = alice["auth"]
    url = f"/api/v1/users/{alice['id']}"
    testapp.patch_json(url, {"about_me": "hello"}, headers=auth)
    response = testapp.patch(
        url,
        b'{"about_me": null}',
        headers={**auth, "Content-Type": "application/merge-patch+json"},
    )
    assert response.json["about_me"] == ""


def test_patch_cannot_remove_a_required_field(app, testapp, alice):
    before = snapshot(app)
    response = testapp.patch_json(
        f"/api/v1/users/{alice['id']}", {"username": None}, headers=alice["auth"], status=400
    )
    assert response.json["errors"][0]["name"] == "username"
    assert snapshot(app) == before


def test_merge_patch_is_only_for_patch(testapp, admin):
    testapp.post(
        "/api/v1/students",
        b'{"name": "x"}',
        headers={**admin["auth"], "Content-Type": "application/merge-patch+json"},
        status=415,
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/students/0",
        "/api/v1/students/99999999999999999999",
        "/api/v1/students/2147483648",
        "/api/v1/students/abc",
        "/api/v1/students/1;DROP TABLE students",
        "/api/v1/students/../users",
    ],
)
def test_ids_that_name_nothing_are_404_problems(testapp, admin, url):
    response = testapp.get(url, headers=admin["auth"], status=404)
    assert response.content_type == "application/problem+json"
