"""Behind a reverse proxy: links and Location use the URL the client used, if trusted."""

from __future__ import annotations

import pytest
from webtest import TestApp

PUBLIC = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.public.example"}


@pytest.fixture
def proxied(app_factory, clean):
    app = app_factory(**{"hyperapi.trusted_proxies": "10.0.0.0/8, fd00::/8"})
    yield app
    app.registry.database.dispose()


def client(app, peer: str) -> TestApp:
    return TestApp(app, extra_environ={"HTTP_HOST": "internal:6543", "REMOTE_ADDR": peer})


def test_links_use_the_scheme_and_host_a_trusted_proxy_forwards(proxied):
    links = client(proxied, "10.1.2.3").get("/api/v1/", headers=PUBLIC).json["_links"]
    assert links["self"]["href"] == "https://api.public.example/api/v1/"
    assert links["users"]["href"] == "https://api.public.example/api/v1/users"


def test_ipv6_trusted_proxy_is_believed_too(proxied):
    links = client(proxied, "fd00::7").get("/api/v1/", headers=PUBLIC).json["_links"]
    assert links["self"]["href"] == "https://api.public.example/api/v1/"


def test_location_of_a_created_resource_is_public_too(proxied):
    created = client(proxied, "10.1.2.3").post_json(
        "/api/v1/users",
        {"username": "carol", "email": "carol@example.com", "password": "a long passphrase"},
        headers=PUBLIC,
        status=201,
    )
    assert created.headers["Location"].startswith("https://api.public.example/api/v1/users/")


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(proxied):
    links = client(proxied, "203.0.113.9").get("/api/v1/", headers=PUBLIC).json["_links"]
    assert links["self"]["href"] == "http://internal:6543/api/v1/"


def test_forwarded_headers_are_ignored_when_no_proxy_is_trusted(testapp):
    headers = {**PUBLIC, "X-Forwarded-For": "198.51.100.1"}
    links = testapp.get("/api/v1/", headers=headers, extra_environ={"REMOTE_ADDR": "10.0.0.1"})
    assert links.json["_links"]["self"]["href"] == "http://api.example.com/api/v1/"


def test_malformed_forwarded_values_are_ignored(proxied):
    headers = {"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "evil.example/phish"}
    links = client(proxied, "10.1.2.3").get("/api/v1/", headers=headers).json["_links"]
    assert links["self"]["href"] == "http://internal:6543/api/v1/"


def test_the_value_the_trusted_proxy_appended_wins(proxied):
    headers = {
        "X-Forwarded-Proto": "http, https",
        "X-Forwarded-Host": "evil.example, api.public.example",
    }
    links = client(proxied, "10.1.2.3").get("/api/v1/", headers=headers).json["_links"]
    assert links["self"]["href"] == "https://api.public.example/api/v1/"
