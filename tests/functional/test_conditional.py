"""Validators, 304s, guarded writes, caching fields and the response cache."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event
from webtest import TestApp


@contextlib.contextmanager
def statements(app):
    """Collect the SQL statements the application sends while the block runs."""
    seen: list[str] = []
    engines = {app.registry.database.engine, app.registry.database.write_engine}

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def new_post(testapp, account, body="hello"):
    return testapp.post_json("/api/v1/posts", {"body": body}, headers=account["auth"])


# -- collections ------------------------------------------------------------------------


def test_collection_etag_changes_on_create_update_and_delete_and_only_then(testapp, alice):
    auth = alice["auth"]
    etag = lambda: testapp.get("/api/v1/posts", headers=auth).headers["ETag"]  # noqa: E731
    start = etag()
    assert etag() == start  # reading changes nothing
    testapp.get("/api/v1/users", headers=auth)
    assert etag() == start  # nor does reading another collection
    post = new_post(testapp, alice).json
    created = etag()
    assert created != start
    testapp.patch_json(f"/api/v1/posts/{post['id']}", {"body": "edited"}, headers=auth)
    updated = etag()
    assert updated not in (start, created)
    testapp.delete(f"/api/v1/posts/{post['id']}", headers=auth)
    deleted = etag()
    assert deleted not in (start, created, updated)
    assert etag() == deleted


def test_collection_304_runs_no_page_query(app, testapp, alice):
    new_post(testapp, alice)
    first = testapp.get("/api/v1/posts", headers=alice["auth"])
    with statements(app) as seen:
        response = testapp.get(
            "/api/v1/posts",
            headers={**alice["auth"], "If-None-Match": first.headers["ETag"]},
            status=304,
        )
    assert response.body == b""
    assert not [s for s in seen if "FROM posts" in s], seen
    assert [s for s in seen if "collection_states" in s]
    with statements(app) as seen:
        testapp.get("/api/v1/posts", headers=alice["auth"])
    assert [s for s in seen if "FROM posts" in s]  # the counter-check: a 200 does run it


def test_sub_collection_etag_follows_its_parent_and_members(testapp, alice, bob):
    path = f"/api/v1/users/{alice['id']}/posts"
    before = testapp.get(path, headers=bob["auth"]).headers["ETag"]
    new_post(testapp, alice)
    after = testapp.get(path, headers=bob["auth"])
    assert after.headers["ETag"] != before
    testapp.get(path, headers={**bob["auth"], "If-None-Match": before}, status=200)
    testapp.get(path, headers={**bob["auth"], "If-None-Match": after.headers["ETag"]}, status=304)


def test_collection_items_carry_the_etag_their_item_has(testapp, alice):
    post = new_post(testapp, alice)
    listed = testapp.get("/api/v1/posts", headers=alice["auth"]).json["items"][0]
    assert listed["_etag"] == post.headers["ETag"]
    testapp.put_json(
        f"/api/v1/posts/{post.json['id']}",
        {"body": "from the list"},
        headers={**alice["auth"], "If-Match": listed["_etag"]},
    )


def test_collection_etag_differs_by_query_and_media_type(testapp, alice):
    auth = alice["auth"]
    plain = testapp.get("/api/v1/posts", headers=auth).headers["ETag"]
    paged = testapp.get("/api/v1/posts?per_page=5", headers=auth).headers["ETag"]
    hal = testapp.get("/api/v1/posts", headers={**auth, "Accept": "application/hal+json"})
    assert len({plain, paged, hal.headers["ETag"]}) == 3


# -- items ------------------------------------------------------------------------------


def test_item_304_costs_one_statement_and_builds_no_representation(
    app, testapp, alice, monkeypatch
):
    # The post comes with the credentials' user in one statement (its whole row: the same
    # round trip, and a stale If-None-Match needs it anyway); a 304 represents nothing.
    from hyperapi.resources import views

    post = new_post(testapp, alice)
    monkeypatch.setattr(views, "represent_item", lambda *a, **k: pytest.fail("represented"))
    with statements(app) as seen:
        testapp.get(
            f"/api/v1/posts/{post.json['id']}",
            headers={**alice["auth"], "If-None-Match": post.headers["ETag"]},
            status=304,
        )
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1 and "posts" in selects[0], seen


def test_etag_differs_for_a_viewer_who_sees_private_fields(testapp, alice, bob):
    path = f"/api/v1/users/{alice['id']}"
    own = testapp.get(path, headers=alice["auth"])
    other = testapp.get(path, headers=bob["auth"])
    assert "email" in own.json and "email" not in other.json
    assert own.headers["ETag"] != other.headers["ETag"]
    # bob's stored copy is not alice's: she gets the full representation.
    testapp.get(path, headers={**alice["auth"], "If-None-Match": other.headers["ETag"]})
    testapp.get(path, headers={**alice["auth"], "If-None-Match": own.headers["ETag"]}, status=304)


def test_write_responses_carry_the_new_validators(testapp, alice):
    post = new_post(testapp, alice)
    assert post.headers["ETag"] and post.headers["Last-Modified"]
    changed = testapp.put_json(
        f"/api/v1/posts/{post.json['id']}",
        {"body": "changed"},
        headers={**alice["auth"], "If-Match": post.headers["ETag"]},
    )
    assert changed.headers["ETag"] != post.headers["ETag"]
    fetched = testapp.get(f"/api/v1/posts/{post.json['id']}", headers=alice["auth"])
    assert fetched.headers["ETag"] == changed.headers["ETag"]
    assert fetched.headers["Last-Modified"] == changed.headers["Last-Modified"]


def test_put_with_stale_if_match_returns_412_and_current_etag(testapp, alice):
    post = new_post(testapp, alice)
    path = f"/api/v1/posts/{post.json['id']}"
    auth = alice["auth"]
    fresh = testapp.patch_json(
        path, {"body": "second"}, headers={**auth, "If-Match": post.headers["ETag"]}
    )
    stale = testapp.put_json(
        path, {"body": "lost"}, headers={**auth, "If-Match": post.headers["ETag"]}, status=412
    )
    assert stale.content_type == "application/problem+json"
    assert stale.headers["ETag"] == fresh.headers["ETag"]
    assert stale.json["current"]["body"] == "second"
    assert testapp.get(path, headers=auth).json["body"] == "second"


def test_a_stale_if_match_wins_over_an_invalid_body(testapp, alice):
    # RFC 9110 §13.2.1: preconditions are evaluated before the request content is processed.
    post = new_post(testapp, alice)
    testapp.put_json(
        f"/api/v1/posts/{post.json['id']}",
        {"body": ""},
        headers={**alice["auth"], "If-Match": '"stale"'},
        status=412,
    )


def test_put_with_if_none_match_star_never_creates(testapp, alice):
    post = new_post(testapp, alice)
    headers = {**alice["auth"], "If-None-Match": "*"}
    testapp.put_json(
        f"/api/v1/posts/{post.json['id']}", {"body": "x"}, headers=headers, status=412
    )
    testapp.put_json("/api/v1/posts/999999", {"body": "x"}, headers=headers, status=404)


def test_identical_put_is_still_a_versioned_write(testapp, alice):
    post = new_post(testapp, alice, body="same")
    again = testapp.put_json(
        f"/api/v1/posts/{post.json['id']}",
        {"body": "same"},
        headers={**alice["auth"], "If-Match": post.headers["ETag"]},
    )
    assert again.headers["ETag"] != post.headers["ETag"]


def test_preconditions_are_ignored_when_the_answer_would_be_an_error(testapp, alice, bob):
    post = new_post(testapp, alice)
    path = f"/api/v1/posts/{post.json['id']}"
    stale = {"If-Match": '"stale"'}
    testapp.get(path, headers=stale, status=401)  # no credentials: 401, not 412
    testapp.delete(path, headers={**bob["auth"], **stale}, status=403)
    testapp.get("/api/v1/posts/999999", headers={**alice["auth"], **stale}, status=404)


# -- POST and the follow relation -------------------------------------------------------


def test_post_with_if_match_creates_only_while_the_collection_is_unchanged(testapp, alice):
    auth = alice["auth"]
    etag = testapp.get("/api/v1/posts", headers=auth).headers["ETag"]
    testapp.post_json("/api/v1/posts", {"body": "a"}, headers={**auth, "If-Match": etag})
    refused = testapp.post_json(
        "/api/v1/posts", {"body": "b"}, headers={**auth, "If-Match": etag}, status=412
    )
    assert refused.headers["ETag"] == testapp.get("/api/v1/posts", headers=auth).headers["ETag"]
    assert testapp.get("/api/v1/posts", headers=auth).json["_meta"]["total"] == 1
    testapp.post_json(
        "/api/v1/posts", {"body": "c"}, headers={**auth, "If-None-Match": "*"}, status=412
    )


# -- require_if_match -------------------------------------------------------------------


@pytest.fixture
def strict(app_factory, clean):
    app = app_factory(**{"hyperapi.require_if_match": "true"})
    return TestApp(app, extra_environ={"HTTP_HOST": "api.example.com"})


def test_writes_without_if_match_get_428_when_it_is_required(strict, accounts):
    alice = accounts.create("alice")
    post = strict.post_json("/api/v1/posts", {"body": "a"}, headers=alice["auth"])
    path = f"/api/v1/posts/{post.json['id']}"
    for method in ("put_json", "patch_json"):
        refused = getattr(strict, method)(path, {"body": "b"}, headers=alice["auth"], status=428)
        assert refused.json["type"] == "/api/v1/problems/precondition-required"
        assert "If-Match" in refused.json["detail"]
    strict.delete(path, headers=alice["auth"], status=428)
    strict.delete("/api/v1/posts/999999", headers=alice["auth"], status=404)
    strict.patch_json(
        path, {"body": "b"}, headers={**alice["auth"], "If-Match": post.headers["ETag"]}
    )


# -- caching fields ---------------------------------------------------------------------


def test_credentialed_responses_are_private_and_must_be_revalidated(testapp, alice):
    response = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert {"Accept", "Authorization"} <= set(response.vary)
    again = testapp.get(
        f"/api/v1/users/{alice['id']}",
        headers={**alice["auth"], "If-None-Match": response.headers["ETag"]},
        status=304,
    )
    assert again.headers["Cache-Control"] == "private, no-cache"
    assert {"Accept", "Authorization"} <= set(again.vary)


def test_entry_document_is_publicly_cacheable_and_revalidatable(testapp):
    entry = testapp.get("/api/v1/")
    assert entry.headers["Cache-Control"] == "public, max-age=60"
    assert "Accept" in entry.vary
    again = testapp.get("/api/v1/", headers={"If-None-Match": entry.headers["ETag"]}, status=304)
    assert again.headers["Cache-Control"] == "public, max-age=60"
    assert again.headers["ETag"] == entry.headers["ETag"] and again.body == b""
    hal = testapp.get("/api/v1/", headers={"Accept": "application/hal+json"})
    assert hal.headers["ETag"] != entry.headers["ETag"]  # other bytes, other validator


def test_public_max_age_is_configurable(app_factory, clean):
    app = TestApp(app_factory(**{"hyperapi.http_cache.max_age": "5"}))
    assert app.get("/api/v1/").headers["Cache-Control"] == "public, max-age=5"


def test_tokens_and_errors_are_never_stored(testapp, alice):
    token = testapp.post("/api/v1/tokens", headers=alice["auth"])
    assert "no-store" in token.headers["Cache-Control"]
    missing = testapp.get("/api/v1/posts/999999", headers=alice["auth"], status=404)
    assert missing.headers["Cache-Control"] == "no-store"


# -- response cache ---------------------------------------------------------------------


@pytest.fixture
def cached(app_factory, clean):
    app = app_factory(**{"hyperapi.response_cache.routes": "posts.collection=60 posts.item=60"})
    return app, TestApp(app, extra_environ={"HTTP_HOST": "api.example.com"})


def test_response_cache_serves_repeated_pages_without_the_page_query(cached, accounts):
    app, client = cached
    alice = accounts.create("alice")
    client.post_json("/api/v1/posts", {"body": "one"}, headers=alice["auth"])
    first = client.get("/api/v1/posts", headers=alice["auth"])
    with statements(app) as seen:
        second = client.get("/api/v1/posts", headers=alice["auth"])
    assert second.body == first.body and second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Link"] == first.headers["Link"]
    assert not [s for s in seen if "FROM posts" in s]


def test_response_cache_is_invalidated_by_every_write(cached, accounts):
    _, client = cached
    alice = accounts.create("alice")
    auth = alice["auth"]
    post = client.post_json("/api/v1/posts", {"body": "one"}, headers=auth).json
    path = f"/api/v1/posts/{post['id']}"
    assert client.get(path, headers=auth).json["body"] == "one"
    client.patch_json(path, {"body": "two"}, headers=auth)
    assert client.get(path, headers=auth).json["body"] == "two"
    assert client.get("/api/v1/posts", headers=auth).json["items"][0]["body"] == "two"
    client.delete(path, headers=auth)
    assert client.get("/api/v1/posts", headers=auth).json["items"] == []
    client.get(path, headers=auth, status=404)


def test_response_cache_keeps_viewers_apart(app_factory, clean, accounts):
    client = TestApp(
        app_factory(**{"hyperapi.response_cache.routes": "users.collection=60"}),
        extra_environ={"HTTP_HOST": "api.example.com"},
    )
    alice, bob = accounts.create("alice"), accounts.create("bob")
    mine = client.get("/api/v1/users", headers=alice["auth"]).json["items"]
    theirs = client.get("/api/v1/users", headers=bob["auth"]).json["items"]
    assert [u.get("email") for u in mine] == ["alice@example.com", None]
    assert [u.get("email") for u in theirs] == [None, "bob@example.com"]
    hal = client.get("/api/v1/users", headers={**alice["auth"], "Accept": "application/hal+json"})
    assert hal.content_type == "application/hal+json"


def test_response_cache_in_redis(app_factory, clean, accounts, redis_url):
    settings = {
        "hyperapi.response_cache.routes": "posts.collection=60",
        "hyperapi.response_cache.backend": "redis",
        "hyperapi.redis.url": redis_url,
    }
    one = TestApp(app_factory(**settings), extra_environ={"HTTP_HOST": "api.example.com"})
    two = TestApp(app_factory(**settings), extra_environ={"HTTP_HOST": "api.example.com"})
    alice = accounts.create("alice")
    one.post_json("/api/v1/posts", {"body": "shared"}, headers=alice["auth"])
    first = one.get("/api/v1/posts", headers=alice["auth"])
    assert two.get("/api/v1/posts", headers=alice["auth"]).body == first.body


def test_bad_response_cache_routes_refuse_to_start(app_factory):
    from hyperapi.settings import ConfigurationError

    with pytest.raises(ConfigurationError):
        app_factory(**{"hyperapi.response_cache.routes": "posts.collection"})


def test_follow_can_be_conditional_too(testapp, alice, bob):
    path = f"/api/v1/users/{alice['id']}/followed/{bob['id']}"
    create_only = {**alice["auth"], "If-None-Match": "*"}
    followed = testapp.put(path, headers=create_only, status=204)
    assert followed.headers["ETag"]
    testapp.put(path, headers=create_only, status=412)  # already following
    testapp.delete(path, headers={**alice["auth"], "If-Match": '"stale"'}, status=412)
    testapp.delete(path, headers={**alice["auth"], "If-Match": followed.headers["ETag"]})
    testapp.delete(path, headers={**alice["auth"], "If-Match": "*"}, status=412)  # gone


@pytest.mark.parametrize(
    "setting", ["hyperapi.response_cache.routes", "hyperapi.http_cache.public_routes"]
)
def test_a_route_name_that_names_no_route_refuses_to_start(app_factory, setting):
    from hyperapi.settings import ConfigurationError

    value = "post.collection=30" if setting.startswith("hyperapi.response") else "api.rot"
    with pytest.raises(ConfigurationError, match="no route named"):
        app_factory(**{setting: value})
