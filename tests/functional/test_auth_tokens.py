"""The token flow: POST /api/v1/tokens with credentials, use the token, DELETE to revoke."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
import sqlalchemy as sa
from itsdangerous.timed import TimestampSigner
from webtest import TestApp

from hyperapi.models import User
from tests.conftest import basic

HOST = {"HTTP_HOST": "api.example.com"}
OLD = "old-token-secret-" + "o" * 32
NEW = "new-token-secret-" + "n" * 32


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def issue(client, account) -> str:
    return client.post("/api/v1/tokens", headers=account["auth"]).json["token"]


@pytest.fixture(scope="module")
def second_app(app_factory):
    """Another application instance (another process) on the same database."""
    return app_factory()


@pytest.fixture
def second(second_app, testapp):
    return TestApp(second_app, extra_environ=HOST)


def test_post_tokens_with_basic_returns_a_token_that_is_never_stored(testapp, alice):
    response = testapp.post("/api/v1/tokens", headers=alice["auth"])
    assert response.status_int == 200
    assert response.json["expires_in"] == 3600
    assert response.json["_links"]["user"]["href"].endswith(f"/api/v1/users/{alice['id']}")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Authorization" in response.headers["Vary"]


def test_the_token_authenticates_its_user(testapp, alice):
    token = issue(testapp, alice)
    response = testapp.get(f"/api/v1/users/{alice['id']}", headers=bearer(token))
    assert response.json["email"] == "alice@example.com"


def test_the_token_works_on_every_instance_sharing_the_secrets(testapp, second, alice):
    token = issue(testapp, alice)
    assert second.get("/api/v1/users", headers=bearer(token)).status_int == 200


def test_post_tokens_records_last_seen(testapp, alice):
    before = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    assert before.json["last_seen"] is None
    issue(testapp, alice)
    after = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    assert after.json["last_seen"] is not None
    assert after.headers["ETag"] != before.headers["ETag"]


def test_delete_tokens_revokes_the_token_on_every_instance(testapp, second, alice):
    token = issue(testapp, alice)
    other = issue(testapp, alice)
    assert second.get("/api/v1/users", headers=bearer(token)).status_int == 200
    response = testapp.delete("/api/v1/tokens", headers=bearer(token))
    assert response.status_int == 204
    assert response.headers["Cache-Control"] == "no-store"
    for client in (testapp, second):
        refused = client.get("/api/v1/users", headers=bearer(token), status=401)
        assert refused.json["detail"] == "Authentication failed: the token has been revoked."
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    # Only the token presented is revoked.
    assert second.get("/api/v1/users", headers=bearer(other)).status_int == 200


def test_a_revoked_token_cannot_be_revoked_again(testapp, alice):
    token = issue(testapp, alice)
    testapp.delete("/api/v1/tokens", headers=bearer(token), status=204)
    testapp.delete("/api/v1/tokens", headers=bearer(token), status=401)


@pytest.mark.parametrize("credentials", ["none", "basic"])
def test_delete_tokens_without_a_bearer_token_is_401(testapp, alice, credentials):
    headers = alice["auth"] if credentials == "basic" else {}
    response = testapp.delete("/api/v1/tokens", headers=headers, status=401)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="hyperapi"')


def test_a_token_cannot_be_exchanged_for_another(testapp, alice):
    token = issue(testapp, alice)
    response = testapp.post("/api/v1/tokens", headers=bearer(token), status=401)
    assert response.json["detail"] == "A token is issued for the credentials of: basic."


@pytest.mark.parametrize(
    "headers",
    [{}, basic("alice", "wrong password"), basic("nobody")],
    ids=["no-credentials", "wrong-password", "unknown-user"],
)
def test_post_tokens_without_good_credentials_is_401_and_never_stored(testapp, alice, headers):
    response = testapp.post("/api/v1/tokens", headers=headers, status=401)
    assert response.content_type == "application/problem+json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="hyperapi", Basic realm="hyperapi", charset="UTF-8"'
    )
    assert "token" not in response.json


def test_login_policies_can_restrict_which_schemes_get_tokens(app_factory, testapp, alice):
    client = TestApp(app_factory(**{"hyperapi.auth.login_policies": "bearer"}), extra_environ=HOST)
    client.post("/api/v1/tokens", headers=alice["auth"], status=401)
    token = issue(testapp, alice)
    assert client.post("/api/v1/tokens", headers=bearer(token)).json["token"] != token


def test_an_expired_token_is_401_with_the_reason(testapp, alice, monkeypatch):
    issued_at = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued_at)
    token = issue(testapp, alice)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued_at + 3600)
    assert testapp.get("/api/v1/users", headers=bearer(token)).status_int == 200
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued_at + 3601)
    response = testapp.get("/api/v1/users", headers=bearer(token), status=401)
    assert response.json["detail"] == "Authentication failed: the token has expired."
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="hyperapi", error="invalid_token", error_description="the token has expired"'
    )


@pytest.mark.parametrize("store", ["database", "memory"])
def test_a_revoked_token_stays_refused_in_the_last_second_it_would_verify(
    app_factory, alice, monkeypatch, store
):
    # Expiring at T, a token still verifies until T + 1 s (itsdangerous counts whole
    # seconds): its revocation must hold that long. (Redis keeps it at least as long: its
    # key's TTL is rounded up to whole seconds; test_auth_revocations checks the TTL.)
    client = TestApp(app_factory(**{"hyperapi.auth.revocations": store}), extra_environ=HOST)
    issued_at = int(time.time())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued_at)
    token = issue(client, alice)
    client.delete("/api/v1/tokens", headers=bearer(token), status=204)
    last_moment = dt.datetime.fromtimestamp(issued_at + 3600.9, dt.UTC)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued_at + 3600)
    for module in ("hyperapi.security.bearer", "hyperapi.security.tokens"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: last_moment)
    if store == "memory":
        client.app.registry.revocations.clock = lambda: last_moment
    response = client.get("/api/v1/users", headers=bearer(token), status=401)
    assert response.json["detail"] == "Authentication failed: the token has been revoked."


def test_the_token_lifetime_comes_from_settings(app_factory, testapp, alice):
    client = TestApp(app_factory(**{"hyperapi.auth.token_expires": "60"}), extra_environ=HOST)
    assert client.post("/api/v1/tokens", headers=alice["auth"]).json["expires_in"] == 60


def test_key_rotation_keeps_tokens_of_a_retired_but_listed_secret(app_factory, testapp, alice):
    before = TestApp(app_factory(**{"hyperapi.auth.token_secrets": OLD}), extra_environ=HOST)
    rotated = TestApp(
        app_factory(**{"hyperapi.auth.token_secrets": f"{NEW} {OLD}"}), extra_environ=HOST
    )
    retired = TestApp(app_factory(**{"hyperapi.auth.token_secrets": NEW}), extra_environ=HOST)
    old_token = issue(before, alice)
    new_token = issue(rotated, alice)
    # Every listed secret verifies...
    assert rotated.get("/api/v1/users", headers=bearer(old_token)).status_int == 200
    # ...the newest signs (an instance that knows only it accepts the new tokens)...
    assert retired.get("/api/v1/users", headers=bearer(new_token)).status_int == 200
    before.get("/api/v1/users", headers=bearer(new_token), status=401)
    # ...and once the old secret is dropped from the list, its tokens are refused.
    response = retired.get("/api/v1/users", headers=bearer(old_token), status=401)
    assert response.json["detail"] == "Authentication failed: the token is not valid."


@pytest.mark.parametrize("where", ["payload", "signature", "truncated", "garbage"])
def test_a_tampered_token_is_401(testapp, alice, where):
    token = issue(testapp, alice)
    payload, timestamp, signature = token.split(".")
    tampered = {
        "payload": "eyJ1IjoxfQ." + timestamp + "." + signature,  # {"u":1}
        "signature": f"{payload}.{timestamp}.{signature[:-4]}AAAA",
        "truncated": token[:-1],
        "garbage": "not a token at all",
    }[where]
    response = testapp.get("/api/v1/users", headers=bearer(tampered), status=401)
    assert response.json["detail"] == "Authentication failed: the token is not valid."


def test_an_empty_bearer_token_is_401(testapp, alice):
    response = testapp.get("/api/v1/users", headers={"Authorization": "Bearer "}, status=401)
    assert response.json["detail"] == "Authentication failed: the Bearer token is missing."


def test_changing_the_password_revokes_every_token_of_the_user(testapp, second, alice, bob):
    tokens = [issue(testapp, alice), issue(testapp, alice)]
    bobs = issue(testapp, bob)
    testapp.patch_json(
        f"/api/v1/users/{alice['id']}",
        {"password": "a brand new password"},
        headers=bearer(tokens[0]),
    )
    for client in (testapp, second):
        for token in tokens:
            response = client.get("/api/v1/users", headers=bearer(token), status=401)
            assert response.json["detail"] == "Authentication failed: the token has been revoked."
    # Other users' tokens are untouched; the new password gets a new token.
    assert testapp.get("/api/v1/users", headers=bearer(bobs)).status_int == 200
    fresh = testapp.post("/api/v1/tokens", headers=basic("alice", "a brand new password"))
    assert testapp.get("/api/v1/users", headers=bearer(fresh.json["token"])).status_int == 200


def test_changing_other_fields_keeps_the_tokens(testapp, alice):
    token = issue(testapp, alice)
    testapp.patch_json(f"/api/v1/users/{alice['id']}", {"about_me": "hi"}, headers=bearer(token))
    assert testapp.get("/api/v1/users", headers=bearer(token)).status_int == 200


def test_a_deleted_users_token_is_401(testapp, alice):
    token = issue(testapp, alice)
    testapp.delete(f"/api/v1/users/{alice['id']}", headers=bearer(token), status=204)
    testapp.get("/api/v1/users", headers=bearer(token), status=401)


def test_post_tokens_changes_the_user_once_so_its_etag_changes(testapp, app, alice):
    """last_seen is part of the representation: its version (the ETag) moves with it."""
    engine = app.registry.database.engine
    with engine.connect() as connection:
        version = connection.execute(sa.select(User.version).where(User.id == alice["id"]))
        before = version.scalar_one()
    issue(testapp, alice)
    with engine.connect() as connection:
        version = connection.execute(sa.select(User.version).where(User.id == alice["id"]))
        assert version.scalar_one() == before + 1


class TestRedisRevocations:
    """The same flow with revocations in Redis, across two instances."""

    @pytest.fixture
    def clients(self, app_factory, redis_url, testapp):
        settings = {"hyperapi.auth.revocations": "redis", "hyperapi.redis.url": redis_url}
        first, other = app_factory(**settings), app_factory(**settings)
        yield TestApp(first, extra_environ=HOST), TestApp(other, extra_environ=HOST)
        for app in (first, other):
            app.registry.revocations.close()

    def test_a_token_revoked_on_one_instance_is_refused_by_the_other(self, clients, alice):
        first, other = clients
        token = issue(first, alice)
        assert other.get("/api/v1/users", headers=bearer(token)).status_int == 200
        first.delete("/api/v1/tokens", headers=bearer(token), status=204)
        other.get("/api/v1/users", headers=bearer(token), status=401)
        first.get("/api/v1/users", headers=bearer(token), status=401)

    def test_the_revocation_expires_with_the_token(self, clients, alice):
        first, _ = clients
        token = issue(first, alice)
        first.delete("/api/v1/tokens", headers=bearer(token), status=204)
        store = first.app.registry.revocations
        claims = first.app.registry.tokens.verify(token)
        ttl = store.client.ttl(store.prefix + claims.token_id)
        assert 3590 <= ttl <= 3601


def test_a_token_signature_is_compared_in_constant_time(testapp, alice, compared):
    token = issue(testapp, alice)
    testapp.get("/api/v1/users", headers=bearer(token))
    signature = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    assert any(signature in (a, b) for a, b in compared)
