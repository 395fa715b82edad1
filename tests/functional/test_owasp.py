"""The OWASP API Security Top 10 (2023) as a checklist: one test per item that applies.

Two items do not apply, and have no test:

- API7:2023 Server Side Request Forgery: hyperapi never fetches a URL a client gives it.
  References in bodies (``"student": "http://host/api/v1/students/3"``) are only matched
  against the API's own paths (hyperapi.schemas.types.Reference); the server's only
  outbound connections are to its database and Redis, named in its settings.
- API10:2023 Unsafe Consumption of APIs: hyperapi consumes no third-party API.

The deeper coverage of each item lives in the behaviour's own tests (test_authorization,
test_auth_*, test_ratelimit, test_bad_input, test_errors); these tests are the checklist,
each asserting the property the item names, on both backends.
"""

from __future__ import annotations

import re

import pytest
from webtest import TestApp

from hyperapi.views.users import users as users_resource
from tests.conftest import basic, snapshot

HOST = {"HTTP_HOST": "api.example.com"}


def client(app, address: str = "192.0.2.1") -> TestApp:
    return TestApp(app, extra_environ={**HOST, "REMOTE_ADDR": address})


@pytest.fixture
def alices_post(testapp, alice) -> dict:
    return testapp.post_json("/api/v1/posts", {"body": "alice's"}, headers=alice["auth"]).json


# -- API1:2023 Broken Object Level Authorization ------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("PATCH", "post", {"body": "bob was here"}),
        ("PUT", "post", {"body": "bob was here"}),
        ("DELETE", "post", None),
        ("PATCH", "user", {"about_me": "bob was here"}),
        ("PUT", "user", {"username": "alice", "email": "bob@example.org"}),
        ("DELETE", "user", None),
        ("PUT", "follow", None),
    ],
)
def test_api1_broken_object_level_authorization_another_users_objects_cannot_be_changed(
    app, testapp, alice, bob, alices_post, method, target, body
):
    url = {
        "post": f"/api/v1/posts/{alices_post['id']}",
        "user": f"/api/v1/users/{alice['id']}",
        # Following someone *as alice*.
        "follow": f"/api/v1/users/{alice['id']}/followed/{bob['id']}",
    }[target]
    before = snapshot(app)
    kwargs = {"headers": bob["auth"], "status": 403}
    if body is None:
        response = testapp.request(url, method=method, **kwargs)
    else:
        response = getattr(testapp, method.lower() + "_json")(url, body, **kwargs)
    assert response.json["type"] == "/api/v1/problems/forbidden"
    assert snapshot(app) == before


# -- API2:2023 Broken Authentication --------------------------------------------------------


def test_api2_broken_authentication_password_guessing_is_limited_per_address(
    app_factory, accounts, clean
):
    alice = accounts.create("alice")
    guarded = client(app_factory(**{"hyperapi.ratelimit.authentication_failures": "3/minute"}))
    for guess in range(3):
        guarded.post("/api/v1/tokens", headers=basic("alice", f"guess {guess}"), status=401)
    refused = guarded.post("/api/v1/tokens", headers=alice["auth"], status=429)
    # Even the right password is not checked once the budget is spent: no oracle.
    assert refused.json["type"] == "/api/v1/problems/quota-exceeded"
    assert int(refused.headers["Retry-After"]) > 0
    # Another address still has its own budget.
    client(guarded.app, "192.0.2.2").post("/api/v1/tokens", headers=alice["auth"], status=200)


def test_api2_broken_authentication_token_issuance_is_limited_and_tokens_are_not_guessable(
    app_factory, accounts, clean
):
    alice = accounts.create("alice")
    limited = client(app_factory(**{"hyperapi.ratelimit.routes": "POST tokens = 2/minute"}))
    tokens = [limited.post("/api/v1/tokens", headers=alice["auth"]).json["token"] for _ in "ab"]
    limited.post("/api/v1/tokens", headers=alice["auth"], status=429)
    # Tokens are signed: one whose signature differs in a single character is refused. (Not
    # the last character: its low bits are base64 padding, which decoding ignores.)
    token = tokens[0]
    head, signature = token.rsplit(".", 1)
    forged = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    refused = limited.get(
        "/api/v1/users", headers={"Authorization": f"Bearer {forged}"}, status=401
    )
    assert refused.json["type"] == "/api/v1/problems/unauthenticated"
    limited.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}, status=200)


# -- API3:2023 Broken Object Property Level Authorization -----------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"is_admin": True},
        {"password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"},
        {"post_count": 1000},
        {"id": 1},
        {"token_generation": 0},
    ],
    ids=lambda body: next(iter(body)),
)
def test_api3_broken_object_property_level_authorization_no_mass_assignment(
    app, testapp, alice, body
):
    before = snapshot(app)
    response = testapp.patch_json(
        f"/api/v1/users/{alice['id']}", body, headers=alice["auth"], status=400
    )
    assert response.json["type"] == "/api/v1/problems/validation"
    assert [e["name"] for e in response.json["errors"]] == list(body)
    assert snapshot(app) == before
    me = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"]).json
    assert "is_admin" not in me and "password_hash" not in me


def test_api3_broken_object_property_level_authorization_email_only_to_its_owner(
    testapp, alice, bob
):
    testapp.put(f"/api/v1/users/{bob['id']}/followed/{alice['id']}", headers=bob["auth"])
    seen_by_bob = [
        testapp.get(f"/api/v1/users/{alice['id']}", headers=bob["auth"]).json,
        *testapp.get("/api/v1/users", headers=bob["auth"]).json["items"],
        *testapp.get(f"/api/v1/users/{bob['id']}/followed", headers=bob["auth"]).json["items"],
    ]
    alices = [user for user in seen_by_bob if user["id"] == alice["id"]]
    assert len(alices) == 3
    for user in alices:
        assert "email" not in user
        assert "alice@example.com" not in str(user)
    # Nor can bob find it by filtering or sorting on it.
    testapp.get("/api/v1/users?email=alice@example.com", headers=bob["auth"], status=400)
    own = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"]).json
    assert own["email"] == "alice@example.com"


# -- API4:2023 Unrestricted Resource Consumption --------------------------------------------


def test_api4_unrestricted_resource_consumption_body_size_is_limited(app_factory, alice, clean):
    small = client(app_factory(**{"hyperapi.max_body_size": "1024"}))
    response = small.post_json(
        "/api/v1/posts", {"body": "x" * 2000}, headers=alice["auth"], status=413
    )
    assert response.json["type"] == "/api/v1/problems/payload-too-large"
    small.post_json("/api/v1/posts", {"body": "x" * 500}, headers=alice["auth"], status=201)


def test_api4_unrestricted_resource_consumption_page_size_is_capped(testapp, admin):
    for n in range(3):
        testapp.post_json("/api/v1/students", {"name": f"s{n}"}, headers=admin["auth"])
    too_many = testapp.get("/api/v1/students?per_page=101", headers=admin["auth"], status=400)
    assert too_many.json["errors"][0]["name"] == "per_page"
    page = testapp.get("/api/v1/students?per_page=100", headers=admin["auth"]).json
    assert page["_meta"]["per_page"] == 100
    # Without per_page, the default page size applies, never "everything".
    assert testapp.get("/api/v1/students", headers=admin["auth"]).json["_meta"]["per_page"] == 25


def test_api4_unrestricted_resource_consumption_requests_are_rate_limited(
    app_factory, alice, clean
):
    limited = client(app_factory(**{"hyperapi.ratelimit.default": "5/minute"}))
    for _ in range(5):
        limited.get("/api/v1/posts", headers=alice["auth"], status=200)
    response = limited.get("/api/v1/posts", headers=alice["auth"], status=429)
    assert response.json["type"] == "/api/v1/problems/quota-exceeded"
    assert "Retry-After" in response.headers


# -- API5:2023 Broken Function Level Authorization ------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/v1/students", {"name": "Kim"}),
        ("POST", "/api/v1/classes", {"name": "Music"}),
        ("POST", "/api/v1/registrations", {"student": "{student}", "class": "{class}"}),
        ("PATCH", "/api/v1/students/{student}", {"name": "Kim"}),
        ("DELETE", "/api/v1/classes/{class}", None),
    ],
)
def test_api5_broken_function_level_authorization_admin_actions_need_an_admin(
    app, testapp, alice, admin, method, url, body
):
    ids = {
        "student": testapp.post_json(
            "/api/v1/students", {"name": "S"}, headers=admin["auth"]
        ).json["id"],
        "class": testapp.post_json("/api/v1/classes", {"name": "C"}, headers=admin["auth"]).json[
            "id"
        ],
    }
    url = url.format(**ids)
    if body is not None:
        body = {k: int(v.format(**ids)) if "{" in v else v for k, v in body.items()}
    before = snapshot(app)
    for headers, status, kind in ((alice["auth"], 403, "forbidden"), ({}, 401, "unauthenticated")):
        if body is None:
            response = testapp.request(url, method=method, headers=headers, status=status)
        else:
            response = getattr(testapp, method.lower() + "_json")(
                url, body, headers=headers, status=status
            )
        assert response.json["type"] == f"/api/v1/problems/{kind}"
    assert snapshot(app) == before
    # The same request by an admin is served: the refusal was about the caller.
    if body is None:
        testapp.request(url, method=method, headers=admin["auth"], status=204)
    else:
        getattr(testapp, method.lower() + "_json")(url, body, headers=admin["auth"])


# -- API6:2023 Unrestricted Access to Sensitive Business Flows ------------------------------


def test_api6_sensitive_business_flows_account_registration_is_limited_per_address(
    app_factory, clean
):
    limited = client(
        app_factory(**{"hyperapi.ratelimit.routes": "POST users.collection = 2/hour"})
    )
    for n in range(2):
        body = {"username": f"bot{n}", "email": f"bot{n}@example.com", "password": "long enough"}
        limited.post_json("/api/v1/users", body, status=201)
    body = {"username": "bot9", "email": "bot9@example.com", "password": "long enough"}
    response = limited.post_json("/api/v1/users", body, status=429)
    assert response.json["type"] == "/api/v1/problems/quota-exceeded"
    assert int(response.headers["Retry-After"]) > 0


# -- API8:2023 Security Misconfiguration ----------------------------------------------------

LEAKS = ("Traceback", 'File "', "hyperapi/", "site-packages", "sqlalchemy", "Python/", "secret")


def assert_reveals_nothing(response) -> None:
    text = response.text
    for leak in LEAKS:
        assert leak.lower() not in text.lower(), leak
    for header in ("Server", "X-Powered-By"):
        assert header not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_api8_security_misconfiguration_a_500_shows_no_stack_trace_or_detail(
    testapp, alice, monkeypatch
):
    def broken(request, row):
        raise RuntimeError("secret detail at /srv/hyperapi/secret.py")

    monkeypatch.setattr(users_resource, "represent", broken)
    response = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"], status=500)
    assert response.json["type"] == "/api/v1/problems/internal"
    assert set(response.json) <= {"type", "title", "status", "detail", "instance", "request_id"}
    assert response.headers["X-Request-ID"] in response.json["detail"]
    assert_reveals_nothing(response)


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/api/v1/nowhere", 404),
        ("TRACE", "/api/v1/users", 405),
        ("GET", "/api/v1/users?per_page=nope", 400),
        ("POST", "/api/v1/posts", 401),
    ],
)
def test_api8_security_misconfiguration_errors_reveal_no_versions_or_internals(
    testapp, alice, method, url, status
):
    headers = {} if status == 401 else alice["auth"]
    response = testapp.request(url, method=method, headers=headers, status=status)
    assert response.content_type == "application/problem+json"
    assert_reveals_nothing(response)


# -- API9:2023 Improper Inventory Management ------------------------------------------------


def test_api9_improper_inventory_management_every_route_is_documented_and_nothing_else_answers(
    testapp, alice
):
    document = testapp.get("/api/v1/openapi.json").json
    routes = testapp.app.registry.introspector.get_category("routes")
    patterns = {intr["introspectable"]["pattern"] for intr in routes}
    documented = set(document["paths"])
    assert len(patterns) > 20 and len(documented) > 20
    undocumented = {
        p
        for p in patterns
        if "static" not in p and "swagger-ui" not in p and _openapi_path(p) not in documented
    }
    assert not undocumented
    for retired in ("/api/v0/users", "/api/users", "/api/v2/users", "/users"):
        response = testapp.get(retired, headers=alice["auth"], status=404)
        assert response.json["type"] == "/api/v1/problems/not-found"


def _openapi_path(pattern: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", r"{\1}", pattern)
