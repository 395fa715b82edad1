"""What authentication adds to responses (challenges, Vary) and keeps out of the logs."""

from __future__ import annotations

import base64
import logging

import pytest

from tests.conftest import PASSWORD, basic

CHALLENGES = 'Bearer realm="hyperapi", Basic realm="hyperapi", charset="UTF-8"'


def vary(response) -> set[str]:
    return {v.strip() for v in response.headers.get("Vary", "").split(",")}


def test_missing_credentials_get_a_challenge_per_enabled_scheme(testapp):
    response = testapp.get("/api/v1/users", status=401)
    assert response.headers["WWW-Authenticate"] == CHALLENGES
    assert response.json["detail"] == "This resource needs credentials (bearer, basic)."


def test_a_refused_token_says_why_in_its_own_challenge_only(testapp):
    response = testapp.get("/api/v1/users", headers={"Authorization": "Bearer nope"}, status=401)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="hyperapi", error="invalid_token", '
        'error_description="the token is not valid", Basic realm="hyperapi", charset="UTF-8"'
    )


def test_the_enabled_schemes_and_their_order_come_from_settings(app_factory):
    from webtest import TestApp

    client = TestApp(
        app_factory(**{"hyperapi.auth.policies": "basic"}),
        extra_environ={"HTTP_HOST": "api.example.com"},
    )
    response = client.get("/api/v1/users", status=401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="hyperapi", charset="UTF-8"'
    # With bearer off, a token is not even looked at.
    response = client.get("/api/v1/users", headers={"Authorization": "Bearer x"}, status=401)
    assert "not one this server accepts" in response.json["detail"]


@pytest.mark.parametrize("credentials", ["basic", "bearer", "none"])
def test_responses_that_depend_on_credentials_vary_on_authorization(
    testapp, accounts, alice, credentials
):
    headers = {"basic": alice["auth"], "bearer": None, "none": {}}[credentials]
    if headers is None:
        headers = accounts.token(alice)
    status = 401 if credentials == "none" else 200
    response = testapp.get(f"/api/v1/users/{alice['id']}", headers=headers, status=status)
    assert "Authorization" in vary(response)


def test_a_403_names_no_view_and_no_permission(testapp, alice, bob):
    response = testapp.delete(f"/api/v1/users/{alice['id']}", headers=bob["auth"], status=403)
    assert response.content_type == "application/problem+json"
    assert response.json["detail"] == "You are not allowed to do this to this resource."
    for leak in ("item_delete", "users.item", "edit", "permission", "ACL"):
        assert leak not in response.text


def test_no_password_or_token_reaches_the_logs(testapp, accounts, alice, caplog):
    caplog.set_level(logging.DEBUG)
    # SQL and its parameters too (development.ini, read by alembic, quiets this logger).
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    new_password = "my new secret password"
    newcomer_password = "newcomer secret password"

    token = testapp.post("/api/v1/tokens", headers=alice["auth"]).json["token"]
    bearer = {"Authorization": "Bearer " + token}
    testapp.get("/api/v1/users", headers=bearer)
    testapp.get("/api/v1/users", headers=basic("alice", "wrong secret guess"), status=401)
    testapp.get("/api/v1/users", headers={"Authorization": "Bearer " + token + "x"}, status=401)
    testapp.post_json(
        "/api/v1/users",
        {"username": "newcomer", "email": "n@example.com", "password": newcomer_password},
    )
    testapp.patch_json(
        f"/api/v1/users/{alice['id']}", {"password": new_password}, headers=alice["auth"]
    )
    fresh = testapp.post("/api/v1/tokens", headers=basic("alice", new_password)).json["token"]
    testapp.delete("/api/v1/tokens", headers={"Authorization": "Bearer " + fresh})

    # The log did record the events...
    assert "token issued" in caplog.text and "authentication failed" in caplog.text
    # (revocations live in the database or in Redis, depending on the backend).
    assert "token revoked" in caplog.text and "UPDATE users" in caplog.text
    # ...and none of the secrets, in clear or in the encodings they travelled in.
    secrets = [PASSWORD, new_password, newcomer_password, "wrong secret guess", token, fresh]
    secrets += [token.rsplit(".", 1)[1], fresh.rsplit(".", 1)[1]]
    secrets += [
        base64.b64encode(f"alice:{p}".encode()).decode()
        for p in (PASSWORD, new_password, "wrong secret guess")
    ]
    for secret in secrets:
        assert secret not in caplog.text
