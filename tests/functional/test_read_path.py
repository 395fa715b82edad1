"""The read path: no transaction manager, one connection, one statement for a Bearer token.

What makes GETs fast must not change what they answer: these tests pin the mechanisms
(hyperapi.models, .security.bearer, .links, .request) and the behaviour they must keep.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re

import pytest
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request
from sqlalchemy import event
from webtest import TestApp

from hyperapi import links


@pytest.fixture(scope="module")
def app(app_factory):
    """Without the row cache: these tests watch what reads do with the database, and a
    read answered from memory does nothing (tests/functional/test_row_cache.py)."""
    return app_factory(**{"hyperapi.row_cache.enabled": "false"})


@contextlib.contextmanager
def engine_events(app, *names):
    """Record the named engine/pool events of both engines while the block runs."""
    seen: list[tuple[str, object]] = []
    database = app.registry.database
    listeners = []
    for engine in {database.engine, database.write_engine}:
        for name in names:
            target = engine.pool if name in ("checkout", "checkin") else engine

            def record(*args, _name=name):
                seen.append((_name, args[2] if _name == "before_cursor_execute" else None))

            event.listen(target, name, record)
            listeners.append((target, name, record))
    try:
        yield seen
    finally:
        for target, name, record in listeners:
            event.remove(target, name, record)


def bearer(testapp, account) -> dict[str, str]:
    token = testapp.post("/api/v1/tokens", headers=account["auth"]).json["token"]
    return {"Authorization": "Bearer " + token}


def test_a_read_takes_at_most_one_connection_and_commits_nothing(app, testapp, alice):
    # None at all once its thread keeps one (test_read_connections).
    headers = bearer(testapp, alice)
    with engine_events(app, "checkout", "commit") as seen:
        testapp.get(f"/api/v1/users/{alice['id']}", headers=headers)
    assert [name for name, _ in seen] in ([], ["checkout"])


def test_a_write_still_commits(app, testapp, alice):
    with engine_events(app, "commit") as seen:
        testapp.patch_json(
            f"/api/v1/users/{alice['id']}", {"about_me": "hi"}, headers=alice["auth"]
        )
    assert [name for name, _ in seen] == ["commit"]
    assert testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"]).json["about_me"]


def test_an_item_read_costs_one_statement_whatever_the_credentials(app, testapp, alice):
    # The token's user, its revocation and the item (its validators for the 304, its row
    # for the 200, a post's author for its ACL) in one statement: one round trip
    # (hyperapi.resources.prefetch).
    token = bearer(testapp, alice)
    post = testapp.post_json("/api/v1/posts", {"body": "hi"}, headers=token)
    paths = (f"/api/v1/users/{alice['id']}", post.headers["Location"])
    for headers, path in itertools.product((token, alice["auth"]), paths):
        etag = testapp.get(path, headers=headers).headers["ETag"]
        for extra, status in (
            ({"If-None-Match": etag}, 304),
            ({"If-None-Match": '"0"'}, 200),
            ({}, 200),
        ):
            with engine_events(app, "before_cursor_execute") as seen:
                testapp.get(path, headers={**headers, **extra}, status=status)
            statements = [sql for _, sql in seen if sql.startswith("SELECT")]  # SQLite: BEGIN
            assert len(statements) == 1, (path, statements)
            assert "token_generation" in statements[0] and "prefetched_item" in statements[0]
            if headers is alice["auth"]:  # Basic: no token to revoke
                assert "revoked_tokens" not in statements[0]
            elif hasattr(app.registry.revocations, "revoked_clause"):  # the database store
                assert "revoked_tokens" in statements[0]
            else:  # Redis: the revocation is asked there, not in SQL
                assert "revoked_tokens" not in statements[0]


def test_a_prefetched_item_answers_as_a_separate_read_would(testapp, alice, bob):
    headers = bearer(testapp, alice)
    # Another user's record (no email), a missing one, a malformed id, and a HEAD.
    other = testapp.get(f"/api/v1/users/{bob['id']}", headers=headers)
    assert "email" not in other.json and other.json["id"] == bob["id"]
    own = testapp.get(f"/api/v1/users/{alice['id']}", headers=headers)
    assert own.json["email"] and own.headers["ETag"] != other.headers["ETag"]
    testapp.get("/api/v1/users/999999", headers=headers, status=404)
    testapp.get("/api/v1/users/0", headers=headers, status=404)
    head = testapp.head(f"/api/v1/users/{bob['id']}", headers=headers)
    assert head.headers["ETag"] == other.headers["ETag"] and not head.body
    # A write through the same token is not prefetched, and the next read sees it.
    testapp.patch_json(f"/api/v1/users/{alice['id']}", {"about_me": "new"}, headers=headers)
    again = testapp.get(f"/api/v1/users/{alice['id']}", headers=headers)
    assert again.json["about_me"] == "new" and again.headers["ETag"] != own.headers["ETag"]


def test_a_remembered_token_is_refused_once_revoked_and_after_a_password_change(testapp, alice):
    path = f"/api/v1/users/{alice['id']}"
    revoked, other = bearer(testapp, alice), bearer(testapp, alice)
    for headers in (revoked, other):
        testapp.get(path, headers=headers)  # verified, so remembered
    testapp.delete("/api/v1/tokens", headers=revoked, status=204)
    testapp.get(path, headers=revoked, status=401)
    testapp.get(path, headers=other, status=200)
    testapp.patch_json(path, {"password": "another good password"}, headers=other)
    refused = testapp.get(path, headers=other, status=401)
    assert refused.json["detail"] == "Authentication failed: the token has been revoked."


def test_a_read_that_fails_leaves_the_next_read_a_clean_connection(testapp, alice):
    testapp.get("/api/v1/users/999999", headers=alice["auth"], status=404)
    testapp.get("/api/v1/users/abc", headers=alice["auth"], status=404)
    assert testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"]).status_int == 200


def test_links_are_what_route_url_builds(app):
    cases = [
        ("users.item", {"id": 7}),
        ("users.follow", {"id": 7, "other_id": 9}),
        ("users.collection", {}),
        ("api.problem", {"kind": "not found/é"}),
        ("students.collection", {"_query": {"per_page": 5, "cursor": "a b"}}),
    ]
    for base in ("http://api.example.com", "https://api.example.com:8443", "http://h/mount%20x"):
        request = Request.blank("/api/v1/", base_url=base)
        request.registry = app.registry
        for route, kw in cases:
            assert links.href(request, route, **kw) == request.route_url(route, **kw)


def test_links_follow_a_trusted_proxy(app_factory, clean, accounts):
    from webtest import TestApp

    proxied = TestApp(
        app_factory(**{"hyperapi.trusted_proxies": "10.0.0.0/8"}),
        extra_environ={"HTTP_HOST": "internal:8000", "REMOTE_ADDR": "10.1.2.3"},
    )
    alice = accounts.create("alice")
    response = proxied.get(
        f"/api/v1/users/{alice['id']}",
        headers={
            **alice["auth"],
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "api.example.org",
        },
    )
    assert response.json["_links"]["self"]["href"] == (
        f"https://api.example.org/api/v1/users/{alice['id']}"
    )


def test_request_methods_are_built_into_one_request_class(app):
    request_class = app.registry.queryUtility(IRequestFactory)
    assert app.registry.queryUtility(IRequestExtensions) is None
    for name in ("dbsession", "dbconnection", "client_address", "request_id", "tm"):
        assert name in vars(request_class), name


# Fields that differ between two answers to the same request for reasons of their own.
VOLATILE = {"Date", "X-Request-ID", "RateLimit", "RateLimit-Policy", "Content-Length"}


def answer(testapp, method, path, headers, body=None):
    kwargs = {"headers": headers, "status": "*", "expect_errors": True}
    if body is not None:
        kwargs["params"] = body
    response = getattr(testapp, method.lower())(path, **kwargs)
    fields = sorted((k, v) for k, v in response.headerlist if k not in VOLATILE)
    body = re.sub(rb'"request_id":"[^"]*"', b"", response.body)  # as X-Request-ID
    return response.status_int, fields, body


@pytest.fixture(scope="session")
def unlimited_app(app_factory):
    """The application without its rate limiter: nothing authenticates before the router."""
    return app_factory(**{"hyperapi.ratelimit.enabled": "false"})


@pytest.mark.parametrize("limiter", ["on", "off"])
def test_a_304_before_the_view_is_the_one_the_view_gives(
    request, testapp, alice, bob, admin, monkeypatch, limiter
):
    # The conditional tween answers an item's 304 from the row read with its Bearer token,
    # without the router (hyperapi.resources.views.not_modified_before_view). Every request
    # below is answered twice, with that shortcut and without it: the answers must agree,
    # whether they are 304s or the view's 200, 401, 403, 404, 406 or 412. With the rate
    # limiter on, it has authenticated the request before the shortcut is asked; with it
    # off, the shortcut authenticates.
    from hyperapi.tweens import conditional

    if limiter == "off":
        testapp = TestApp(
            request.getfixturevalue("unlimited_app"), extra_environ=testapp.extra_environ
        )

    token = bearer(testapp, alice)["Authorization"]
    revoked = bearer(testapp, alice)["Authorization"]
    other_token = bearer(testapp, bob)["Authorization"]
    basic = bob["auth"]["Authorization"]
    wrong = "Basic " + base64.b64encode(b"bob:not his password").decode()
    post = testapp.post_json("/api/v1/posts", {"body": "hi"}, headers={"Authorization": token})
    post_path = post.headers["Location"].replace("http://localhost", "")
    testapp.delete("/api/v1/tokens", headers={"Authorization": revoked}, status=204)
    paths = [f"/api/v1/users/{alice['id']}", f"/api/v1/users/{bob['id']}", post_path]
    etags = {
        (path, accept): testapp.get(
            path, headers={"Authorization": token, "Accept": accept}
        ).headers["ETag"]
        for path in paths
        for accept in ("application/json", "application/hal+json")
    }
    cases = []
    # Items, a missing one, a collection and the public entry document.
    for path in [
        *paths,
        "/api/v1/users/999999",
        "/api/v1/students/1",
        "/api/v1/students",
        "/api/v1/",
    ]:
        for accept in ("application/json", "application/hal+json", "image/png", None):
            etag = etags.get((path, accept or "application/json"), '"1"')
            for conditions in (
                {"If-None-Match": etag},
                {"If-None-Match": f"{etag}, W/{etag}"},
                {"If-None-Match": "*"},
                {"If-None-Match": '"nope"'},
                {"If-Modified-Since": "Sun, 01 Jan 2090 00:00:00 GMT"},
                {"If-None-Match": etag, "If-Match": '"nope"'},
                {"If-None-Match": "not, a list"},
            ):
                for auth in (token, other_token, revoked, "Bearer forged", basic, wrong):
                    headers = {"Authorization": auth, **conditions}
                    if accept:
                        headers["Accept"] = accept
                    cases.append(("GET", path, headers, None))
            cases.append(("HEAD", path, {"Authorization": token, "If-None-Match": etag}, None))
            cases.append(
                ("GET", path + "?x=1", {"Authorization": token, "If-None-Match": etag}, None)
            )
    taken = []
    decide = conditional.not_modified_before_view

    def counted(request):
        response = decide(request)
        taken.append(response is not None)
        return response

    monkeypatch.setattr(conditional, "not_modified_before_view", counted)
    shortcut = [answer(testapp, *case) for case in cases]
    # The shortcut answered most 304s (not those with a query string: the view's).
    assert 10 < sum(taken) < sum(status == 304 for status, _, _ in shortcut)
    monkeypatch.setattr(conditional, "not_modified_before_view", lambda request: None)
    by_view = [answer(testapp, *case) for case in cases]
    for case, fast, slow in zip(cases, shortcut, by_view, strict=True):
        assert fast == slow, case
