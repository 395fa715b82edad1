"""The classroom and social resources: create, read, change, delete, and their invariants."""

from __future__ import annotations

import pytest

from tests.conftest import basic, snapshot


def register(testapp, username, email=None, status=201):
    return testapp.post_json(
        "/api/v1/users",
        {
            "username": username,
            "email": email or f"{username}@example.com",
            "password": "long enough",
        },
        status=status,
    )


# -- users ------------------------------------------------------------------------------


def test_registering_answers_201_with_location_and_the_representation(testapp):
    response = register(testapp, "carol")
    user = response.json
    assert response.headers["Location"] == f"http://api.example.com/api/v1/users/{user['id']}"
    assert {
        "id",
        "username",
        "about_me",
        "last_seen",
        "post_count",
        "follower_count",
        "followed_count",
        "_links",
    } <= set(user)
    assert {"self", "followers", "followed", "posts"} <= set(user["_links"])
    assert "password" not in user and "password_hash" not in user


@pytest.mark.parametrize(
    ("username", "email"),
    [
        ("alice", "other@example.com"),
        ("ALICE", "other@example.com"),
        ("zed", "alice@example.com"),
        ("zed", "ALICE@example.com"),
    ],
)
def test_duplicate_username_or_email_is_a_409_and_changes_nothing(
    app, testapp, alice, username, email
):
    before = snapshot(app)
    response = register(testapp, username, email, status=409)
    assert response.json["type"] == "/api/v1/problems/conflict"
    assert snapshot(app) == before


def test_email_shows_only_to_its_owner_and_admins(testapp, alice, bob, admin):
    url = f"/api/v1/users/{alice['id']}"
    assert testapp.get(url, headers=alice["auth"]).json["email"] == "alice@example.com"
    assert testapp.get(url, headers=admin["auth"]).json["email"] == "alice@example.com"
    assert "email" not in testapp.get(url, headers=bob["auth"]).json
    listed = testapp.get("/api/v1/users", headers=bob["auth"]).json["items"]
    assert [u["username"] for u in listed if "email" in u] == ["bob"]


def test_users_filter_by_username(testapp, alice, bob):
    response = testapp.get("/api/v1/users?username=bob", headers=alice["auth"])
    assert [u["username"] for u in response.json["items"]] == ["bob"]


def test_changing_the_password_changes_what_basic_auth_accepts(testapp, alice):
    url = f"/api/v1/users/{alice['id']}"
    testapp.patch_json(url, {"password": "a brand new one"}, headers=alice["auth"])
    testapp.get(url, headers=alice["auth"], status=401)
    testapp.get(url, headers=basic("alice", "a brand new one"))


# -- posts and counters -----------------------------------------------------------------


def test_posts_count_on_their_author_and_follow_them_through_deletes(testapp, alice, bob):
    for body in ("one", "two", "three"):
        testapp.post_json("/api/v1/posts", {"body": body}, headers=alice["auth"])
    alice_url = f"/api/v1/users/{alice['id']}"
    assert testapp.get(alice_url, headers=bob["auth"]).json["post_count"] == 3
    posts = testapp.get(f"{alice_url}/posts", headers=bob["auth"]).json
    assert posts["_meta"]["total"] == 3
    testapp.delete(f"/api/v1/posts/{posts['items'][0]['id']}", headers=alice["auth"])
    assert testapp.get(alice_url, headers=bob["auth"]).json["post_count"] == 2
    assert testapp.get("/api/v1/posts", headers=bob["auth"]).json["_meta"]["total"] == 2


def test_posts_filter_by_author_url_or_id(testapp, alice, bob):
    testapp.post_json("/api/v1/posts", {"body": "by alice"}, headers=alice["auth"])
    testapp.post_json("/api/v1/posts", {"body": "by bob"}, headers=bob["auth"])
    by_url = testapp.get(
        f"/api/v1/posts?author=http://api.example.com/api/v1/users/{bob['id']}",
        headers=alice["auth"],
    ).json
    by_id = testapp.get(f"/api/v1/posts?author={bob['id']}", headers=alice["auth"]).json
    assert (
        [p["body"] for p in by_url["items"]] == [p["body"] for p in by_id["items"]] == ["by bob"]
    )


def test_a_post_names_its_author_and_has_a_utc_timestamp(testapp, alice):
    post = testapp.post_json("/api/v1/posts", {"body": "hi"}, headers=alice["auth"]).json
    assert post["author"] == f"http://api.example.com/api/v1/users/{alice['id']}"
    assert post["timestamp"].endswith("Z")


def test_author_cannot_be_assigned(app, testapp, alice, bob):
    before = snapshot(app)
    response = testapp.post_json(
        "/api/v1/posts", {"body": "x", "author": bob["id"]}, headers=alice["auth"], status=400
    )
    assert response.json["errors"][0] == {
        "location": "body",
        "name": "author",
        "description": "is read-only",
    }
    assert snapshot(app) == before


# -- following --------------------------------------------------------------------------


def test_following_is_idempotent_and_counted(testapp, alice, bob):
    url = f"/api/v1/users/{alice['id']}/followed/{bob['id']}"
    for _ in range(2):
        assert testapp.put(url, headers=alice["auth"]).status_int == 204
    bob_user = testapp.get(f"/api/v1/users/{bob['id']}", headers=alice["auth"]).json
    alice_user = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"]).json
    assert (bob_user["follower_count"], alice_user["followed_count"]) == (1, 1)
    followed = testapp.get(f"/api/v1/users/{alice['id']}/followed", headers=bob["auth"]).json
    assert [u["id"] for u in followed["items"]] == [bob["id"]]
    assert followed["_meta"]["total"] == 1
    for _ in range(2):
        assert testapp.delete(url, headers=alice["auth"]).status_int == 204
    bob_user = testapp.get(f"/api/v1/users/{bob['id']}", headers=alice["auth"]).json
    assert bob_user["follower_count"] == 0


def test_following_oneself_or_nobody_is_refused(testapp, alice):
    testapp.put(
        f"/api/v1/users/{alice['id']}/followed/{alice['id']}", headers=alice["auth"], status=400
    )
    testapp.put(f"/api/v1/users/{alice['id']}/followed/999", headers=alice["auth"], status=404)


def test_deleting_a_user_keeps_every_counter_true(testapp, alice, bob, admin):
    testapp.put(f"/api/v1/users/{alice['id']}/followed/{bob['id']}", headers=alice["auth"])
    testapp.put(f"/api/v1/users/{bob['id']}/followed/{alice['id']}", headers=bob["auth"])
    testapp.post_json("/api/v1/posts", {"body": "bye"}, headers=alice["auth"])
    testapp.delete(f"/api/v1/users/{alice['id']}", headers=alice["auth"], status=204)
    bob_user = testapp.get(f"/api/v1/users/{bob['id']}", headers=bob["auth"]).json
    assert (bob_user["follower_count"], bob_user["followed_count"]) == (0, 0)
    assert testapp.get("/api/v1/posts", headers=bob["auth"]).json["_meta"]["total"] == 0
    assert testapp.get("/api/v1/users", headers=bob["auth"]).json["_meta"]["total"] == 2


# -- classroom --------------------------------------------------------------------------


@pytest.fixture
def classroom(testapp, admin):
    auth = admin["auth"]
    student = testapp.post_json("/api/v1/students", {"name": "Ann"}, headers=auth).json
    klass = testapp.post_json("/api/v1/classes", {"name": "Maths"}, headers=auth).json
    return student, klass


def test_a_registration_takes_urls_or_ids_and_a_duplicate_pair_is_409(
    app, testapp, admin, classroom
):
    student, klass = classroom
    auth = admin["auth"]
    first = testapp.post_json(
        "/api/v1/registrations",
        {
            "student": student["_links"]["self"]["href"],
            "class": klass["id"],
            "enrolled_at": "2026-01-02T03:04:05+01:00",
        },
        headers=auth,
    ).json
    assert first["enrolled_at"] == "2026-01-02T02:04:05.000000Z"
    assert first["student"] == student["_links"]["self"]["href"]
    before = snapshot(app)
    again = testapp.post_json(
        "/api/v1/registrations",
        {"student": student["id"], "class": klass["id"]},
        headers=auth,
        status=409,
    )
    assert again.json["type"] == "/api/v1/problems/conflict"
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"student": 999, "class": 1}, "student"),
        ({"student": "http://api.example.com/api/v1/classes/1", "class": 1}, "student"),
        ({"student": True, "class": 1}, "student"),
        ({"student": 1, "class": "/api/v1/students/1"}, "class"),
        ({"student": 1, "class": 1, "enrolled_at": "yesterday"}, "enrolled_at"),
        ({"student": 1, "class": 1, "enrolled_at": "2026-01-02T03:04:05"}, "enrolled_at"),
    ],
)
def test_bad_references_are_field_level_400s(app, testapp, admin, classroom, body, name):
    before = snapshot(app)
    response = testapp.post_json("/api/v1/registrations", body, headers=admin["auth"], status=400)
    assert name in [e["name"] for e in response.json["errors"]]
    assert snapshot(app) == before


def test_registrations_cannot_be_edited(testapp, admin, classroom):
    student, klass = classroom
    reg = testapp.post_json(
        "/api/v1/registrations",
        {"student": student["id"], "class": klass["id"]},
        headers=admin["auth"],
    ).json
    response = testapp.put_json(
        f"/api/v1/registrations/{reg['id']}", {}, headers=admin["auth"], status=405
    )
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "DELETE"}


def test_deleting_a_student_deletes_their_registrations_and_totals_follow(
    testapp, admin, classroom
):
    student, klass = classroom
    auth = admin["auth"]
    testapp.post_json(
        "/api/v1/registrations", {"student": student["id"], "class": klass["id"]}, headers=auth
    )
    testapp.delete(f"/api/v1/students/{student['id']}", headers=auth, status=204)
    registrations = testapp.get("/api/v1/registrations", headers=auth).json
    assert registrations["items"] == [] and registrations["_meta"]["total"] == 0
    assert (
        testapp.get(f"/api/v1/classes/{klass['id']}/registrations", headers=auth).json["items"]
        == []
    )
    testapp.get(f"/api/v1/students/{student['id']}/registrations", headers=auth, status=404)


# -- representation and protocol ---------------------------------------------------------


def test_hal_json_is_served_when_asked_for(testapp, alice):
    response = testapp.get(
        "/api/v1/users", headers={**alice["auth"], "Accept": "application/hal+json"}
    )
    assert response.content_type == "application/hal+json"
    assert testapp.get("/api/v1/users", headers=alice["auth"]).content_type == "application/json"


def test_an_accept_nothing_can_satisfy_is_406(testapp, alice):
    response = testapp.get(
        "/api/v1/users", headers={**alice["auth"], "Accept": "application/xml"}, status=406
    )
    assert response.json["status"] == 406


def test_an_unsupported_method_is_405_with_allow(testapp, alice):
    response = testapp.delete("/api/v1/users", headers=alice["auth"], status=405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    assert response.content_type == "application/problem+json"


def test_head_answers_like_get_without_a_body(testapp, alice):
    get = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    head = testapp.head(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    assert head.status_int == 200 and head.body == b""
    assert head.headers["ETag"] == get.headers["ETag"]


def test_missing_items_are_404_problems(testapp, admin):
    for url in (
        "/api/v1/users/999",
        "/api/v1/posts/999",
        "/api/v1/students/999",
        "/api/v1/classes/999",
        "/api/v1/registrations/999",
        "/api/v1/users/999/followers",
        "/api/v1/students/999/registrations",
    ):
        response = testapp.get(url, headers=admin["auth"], status=404)
        assert response.json["type"] == "/api/v1/problems/not-found"
    testapp.delete("/api/v1/students/999", headers=admin["auth"], status=404)
    testapp.patch_json("/api/v1/classes/999", {"name": "x"}, headers=admin["auth"], status=404)
