"""Credentials that were presented and did not verify get 401, on public routes too.

A forged, revoked or wrongly signed token, a wrong password, or an ``Authorization`` scheme
that no enabled scheme accepts is refused wherever it is sent, as it is by Django REST
framework and GitHub's API: a client learns at once that its credentials are bad, rather
than being served the anonymous answer. A request without credentials is answered as
before, and the operations endpoints, which load balancers call with whatever headers they
were given, answer regardless.
"""

from __future__ import annotations

import pytest
from webtest import TestApp

from hyperapi import main
from hyperapi.errors import PROBLEM_JSON
from hyperapi.routes import OPERATIONS
from tests.conftest import basic, row_counts
from tests.functional.test_auth_plugin import PLUGIN
from tests.functional.test_openapi import Conformance

HOST = {"HTTP_HOST": "api.example.com"}
CHALLENGES = 'Bearer realm="hyperapi", Basic realm="hyperapi", charset="UTF-8"'

#: Public routes (every GET answers without credentials) and their OpenAPI path templates.
PUBLIC = {
    "/api/v1/": "/api/v1/",
    "/api/v1/openapi.json": "/api/v1/openapi.json",
    "/api/v1/problems/not-found": "/api/v1/problems/{kind}",
}
PROBES = ["/__lbheartbeat__", "/__heartbeat__", "/__version__"]
FAILURES = ["forged-bearer", "revoked-bearer", "wrong-password", "unknown-scheme"]


@pytest.fixture(scope="module")
def unlimited_app(settings):
    # Disposed with this module rather than held, with its connections, for the session.
    app = main({}, **{**settings, "hyperapi.ratelimit.enabled": "false"})
    yield app
    app.registry.database.dispose()


@pytest.fixture(params=["limiter-on", "limiter-off"])
def client(request, app, clean) -> TestApp:
    """The application with its rate limiter (which authenticates first) and without it."""
    if request.param == "limiter-off":
        return TestApp(request.getfixturevalue("unlimited_app"), extra_environ=HOST)
    return TestApp(app, extra_environ=HOST)


@pytest.fixture
def refused(client, accounts, alice):
    """Credentials of each kind that fails, and the reason the 401 gives for them."""

    def make(kind: str) -> tuple[dict[str, str], str]:
        if kind == "forged-bearer":
            return {"Authorization": "Bearer forged"}, "the token is not valid"
        if kind == "revoked-bearer":
            token = client.post("/api/v1/tokens", headers=alice["auth"]).json["token"]
            headers = {"Authorization": "Bearer " + token}
            client.delete("/api/v1/tokens", headers=headers, status=204)
            return headers, "the token has been revoked"
        if kind == "wrong-password":
            return basic("alice", "not her password"), "the username or password is not valid"
        return (
            {"Authorization": "Digest username=alice"},
            "the Authorization scheme is not one this server accepts",
        )

    return make


def assert_refused(response, reason: str) -> None:
    assert response.status_int == 401
    assert response.content_type == PROBLEM_JSON
    assert response.json["type"] == "/api/v1/problems/unauthenticated"
    assert response.json["detail"] == f"Authentication failed: {reason}."
    # One challenge per enabled scheme; a refused token's says why (RFC 6750 §3.1).
    challenges = response.headers["WWW-Authenticate"]
    assert challenges.startswith('Bearer realm="hyperapi"')
    assert challenges.endswith('Basic realm="hyperapi", charset="UTF-8"')
    assert ('error="invalid_token"' in challenges) == reason.startswith("the token")
    assert response.headers["Cache-Control"] == "no-store"
    assert {"Accept", "Authorization"} <= {v.strip() for v in response.headers["Vary"].split(",")}


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("path", list(PUBLIC))
def test_bad_credentials_on_a_public_document_get_401_as_documented(
    client, refused, path, failure
):
    headers, reason = refused(failure)
    response = client.get(path, headers=headers, status=401)
    assert_refused(response, reason)
    document = client.get("/api/v1/openapi.json").json
    Conformance(document).check("GET", PUBLIC[path], response, expect=401)


@pytest.mark.parametrize("failure", FAILURES)
def test_bad_credentials_on_the_docs_page_get_the_401_page(client, refused, failure):
    headers, reason = refused(failure)
    response = client.get("/api/v1/docs", headers={**headers, "Accept": "text/html"}, status=401)
    assert response.content_type == "text/html"
    assert response.headers["WWW-Authenticate"].endswith('charset="UTF-8"')
    assert reason in response.text


@pytest.mark.parametrize("failure", FAILURES)
def test_bad_credentials_register_no_account(app, client, refused, failure):
    headers, reason = refused(failure)
    before = row_counts(app)
    account = {"username": "mallory", "email": "m@example.com", "password": "a long password"}
    response = client.post_json("/api/v1/users", account, headers=headers, status=401)
    assert_refused(response, reason)
    assert row_counts(app) == before


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("path", PROBES)
def test_probes_answer_whatever_credentials_they_carry(client, refused, path, failure):
    headers, _ = refused(failure)
    response = client.get(path, headers=headers, status=200)
    assert response.content_type == "application/json"
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("path", [*PUBLIC, "/api/v1/docs", *PROBES])
def test_public_routes_without_credentials_answer_as_before(client, path):
    response = client.get(path, headers={"Accept": "text/html, application/json;q=0.9"})
    assert response.status_int == 200
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("path", list(PUBLIC))
def test_public_routes_with_good_credentials_answer_as_without(client, alice, path):
    anonymous = client.get(path)
    token = client.post("/api/v1/tokens", headers=alice["auth"]).json["token"]
    for headers in (alice["auth"], {"Authorization": "Bearer " + token}):
        assert client.get(path, headers=headers).body == anonymous.body


@pytest.mark.parametrize("path", list(PUBLIC))
def test_public_documents_vary_on_the_credentials_that_can_refuse_them(client, path):
    # A shared cache must not answer a request with bad credentials from an anonymous 200.
    response = client.get(path)
    assert "Authorization" in {v.strip() for v in response.headers["Vary"].split(",")}


def test_protected_routes_answer_bad_credentials_as_before(client, refused):
    headers, reason = refused("forged-bearer")
    response = client.get("/api/v1/users", headers=headers, status=401)
    assert_refused(response, reason)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="hyperapi", error="invalid_token", '
        'error_description="the token is not valid", Basic realm="hyperapi", charset="UTF-8"'
    )


def test_the_token_endpoint_refuses_a_wrong_password_unstored(client, refused):
    headers, reason = refused("wrong-password")
    response = client.post("/api/v1/tokens", headers=headers, status=401)
    assert response.json["detail"] == f"Authentication failed: {reason}."
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["WWW-Authenticate"] == CHALLENGES


def test_the_document_declares_401_on_public_operations_but_the_probes(testapp):
    paths = testapp.get("/api/v1/openapi.json").json["paths"]
    probes = {path for path in paths if path.startswith("/__")}
    assert len(probes) == len(OPERATIONS)
    for path, item in paths.items():
        for method, operation in item.items():
            assert ("401" in operation["responses"]) == (path not in probes), (method, path)


def test_a_plugin_schemes_bad_credentials_get_401_on_public_routes(settings, clean):
    # The headers a scheme reads (its ``vary``) are what "carrying credentials" means.
    app = main({}, **{**settings, **PLUGIN, "hyperapi.ratelimit.enabled": "false"})
    client = TestApp(app, extra_environ=HOST)
    try:
        response = client.get("/api/v1/", headers={"X-API-Key": "guessed"}, status=401)
        assert response.json["detail"] == "Authentication failed: the API key is not valid."
        assert response.headers["WWW-Authenticate"].startswith('ApiKey header="X-API-Key"')
        assert client.get("/__lbheartbeat__", headers={"X-API-Key": "guessed"}).status_int == 200
        assert "X-API-Key" in client.get("/api/v1/").headers["Vary"]
    finally:
        app.registry.database.dispose()
