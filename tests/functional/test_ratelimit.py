"""Rate limiting: budgets per user and per address, the RateLimit fields, 429s, Redis.

Each test builds its own application with small limits (the shared test app's limits are
out of reach). Behaviour tests run on the memory storage and on Redis; each Redis-backed app
gets its own key prefix, so tests never share counters.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import Counter

import pytest
from argon2 import PasswordHasher
from webtest import TestApp

from hyperapi.settings import ConfigurationError
from tests.conftest import basic

STATUS = re.compile(r'"(?P<name>[\w.-]+)";r=(?P<r>\d+);t=(?P<t>\d+)')


@pytest.fixture(params=["memory", "redis"])
def storage(request) -> dict[str, str]:
    if request.param == "memory":
        return {"hyperapi.ratelimit.storage_url": "memory://"}
    return {
        "hyperapi.ratelimit.storage_url": request.getfixturevalue("redis_url"),
        "hyperapi.ratelimit.key_prefix": f"test-{uuid.uuid4().hex}",
    }


@pytest.fixture
def limited(app_factory, storage, clean):
    """``limited(**settings)``: an application with these rate-limit settings."""
    apps = []

    def make(**overrides):
        app = app_factory(**{"hyperapi.ratelimit.routes": "", **storage, **overrides})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.registry.database.dispose()


def client(app, address="192.0.2.1", **environ) -> TestApp:
    return TestApp(
        app, extra_environ={"HTTP_HOST": "api.example.com", "REMOTE_ADDR": address, **environ}
    )


def status(response) -> dict:
    match = STATUS.fullmatch(response.headers["RateLimit"])
    assert match, response.headers["RateLimit"]
    return {"name": match["name"], "r": int(match["r"]), "t": int(match["t"])}


def spend(testapp, path="/api/v1/", n=1, **kw):
    return [testapp.get(path, status="*", **kw).status_int for _ in range(n)]


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_request_over_the_limit_gets_429_with_problem_and_headers(limited, strategy):
    app = client(
        limited(
            **{"hyperapi.ratelimit.default": "3/minute", "hyperapi.ratelimit.strategy": strategy}
        )
    )
    for remaining in (2, 1, 0):
        response = app.get("/api/v1/")
        assert response.headers["RateLimit-Policy"] == '"default";q=3;w=60'
        assert status(response)["r"] == remaining
        assert 0 < status(response)["t"] <= 60
    refused = app.get("/api/v1/", status=429)
    assert refused.content_type == "application/problem+json"
    assert refused.json["type"].endswith("/problems/quota-exceeded")
    assert refused.json["status"] == 429
    assert refused.json["violated-policies"] == ["default"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == '"default";q=3;w=60'
    assert status(refused)["r"] == 0


def test_error_responses_carry_the_ratelimit_fields_and_count(limited):
    app = client(limited(**{"hyperapi.ratelimit.default": "2/minute"}))
    missing = app.get("/api/v1/nowhere", status=404)
    assert status(missing)["r"] == 1
    unauthenticated = app.get("/api/v1/posts", status=401)
    assert status(unauthenticated)["r"] == 0
    app.get("/api/v1/", status=429)


def test_window_really_resets_while_the_client_keeps_calling(limited):
    # Eve's bug #767: each refused request pushed the reset further, so it never came.
    app = client(limited(**{"hyperapi.ratelimit.default": "2/second"}))
    started = time.monotonic()
    assert spend(app, n=2) == [200, 200]
    refused = []
    while time.monotonic() - started < 0.7:
        refused.append(app.get("/api/v1/", status="*").status_int)
    assert set(refused) == {429}
    time.sleep(max(0.0, started + 1.3 - time.monotonic()))
    response = app.get("/api/v1/")
    assert status(response)["r"] == 1


def test_health_endpoints_are_neither_limited_nor_counted(limited):
    app = client(limited(**{"hyperapi.ratelimit.default": "1/minute"}))
    for path in ("/__lbheartbeat__", "/__heartbeat__", "/__version__") * 3:
        response = app.get(path)
        assert "RateLimit" not in response.headers
        assert "RateLimit-Policy" not in response.headers
    assert status(app.get("/api/v1/"))["r"] == 0


def test_per_user_and_per_address_budgets_are_independent(limited, accounts):
    alice, bob = accounts.create("alice"), accounts.create("bob")
    app = limited(**{"hyperapi.ratelimit.default": "2/minute"})
    here, there = client(app, "192.0.2.1"), client(app, "192.0.2.2")
    assert spend(here, n=3) == [200, 200, 429]
    # The same address, authenticated: alice's own budget, then bob's.
    assert spend(here, n=3, headers=alice["auth"]) == [200, 200, 429]
    assert spend(here, n=1, headers=bob["auth"]) == [200]
    # Alice's budget follows her to another address; that address's own is untouched.
    assert spend(there, n=1, headers=alice["auth"]) == [429]
    assert spend(there, n=2) == [200, 200]


def test_route_policy_replaces_the_default_for_its_method(limited, accounts):
    alice = accounts.create("alice")
    app = client(
        limited(
            **{
                "hyperapi.ratelimit.default": "100/minute",
                "hyperapi.ratelimit.routes": "POST tokens = 1/minute",
            }
        )
    )
    issued = app.post("/api/v1/tokens", headers=alice["auth"])
    assert issued.headers["RateLimit-Policy"] == '"post-tokens";q=1;w=60'
    refused = app.post("/api/v1/tokens", headers=alice["auth"], status=429)
    assert refused.json["violated-policies"] == ["post-tokens"]
    # Other methods and routes keep the default policy, with its own budget.
    bearer = {"Authorization": "Bearer " + issued.json["token"]}
    response = app.get("/api/v1/users", headers=bearer)
    assert response.headers["RateLimit-Policy"] == '"default";q=100;w=60'


def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(limited):
    app = client(limited(**{"hyperapi.ratelimit.default": "2/minute"}), "203.0.113.9")
    assert spend(app, n=2) == [200, 200]
    for spoof in ("198.51.100.1", "198.51.100.2, 198.51.100.3", "10.0.0.1"):
        assert spend(app, headers={"X-Forwarded-For": spoof}) == [429]


def test_forwarded_for_from_a_trusted_proxy_is_honoured(limited):
    app = limited(
        **{"hyperapi.ratelimit.default": "2/minute", "hyperapi.trusted_proxies": "10.0.0.0/8"}
    )
    proxy = client(app, "10.0.0.5")
    first = {"X-Forwarded-For": "198.51.100.1"}
    assert spend(proxy, n=3, headers=first) == [200, 200, 429]
    # Another client behind the same proxy has its own budget...
    assert spend(proxy, headers={"X-Forwarded-For": "198.51.100.2"}) == [200]
    # ...while the first cannot escape through a second trusted hop or a forged prefix.
    assert spend(proxy, headers={"X-Forwarded-For": "198.51.100.1, 10.0.0.9"}) == [429]
    assert spend(proxy, headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}) == [429]
    # The proxy's own requests (no header) count for the proxy.
    assert spend(proxy, n=1) == [200]


@pytest.fixture
def hashing(monkeypatch) -> Counter:
    """Counts argon2 hash computations (verifications and new hashes)."""
    calls: Counter = Counter()
    for name in ("verify", "hash"):
        original = getattr(PasswordHasher, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(PasswordHasher, name, counting)
    return calls


def test_failed_basic_attempts_are_limited_before_any_hash(limited, accounts, hashing):
    alice = accounts.create("alice")
    app = limited(**{"hyperapi.ratelimit.authentication_failures": "3/minute"})
    here = client(app, "192.0.2.1")
    wrong = basic("alice", "wrong password")
    nobody = basic("nobody", "wrong password")
    hashing.clear()
    assert spend(here, "/api/v1/posts", headers=wrong) == [401]
    assert spend(here, "/api/v1/posts", n=2, headers=nobody) == [401, 401]
    spent = sum(hashing.values())
    assert spent >= 3
    refused = here.get("/api/v1/posts", headers=wrong, status=429)
    assert refused.json["violated-policies"] == ["authentication-failures"]
    assert refused.headers["RateLimit-Policy"] == '"authentication-failures";q=3;w=60'
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Even the right password is not checked from this address until the window ends.
    assert spend(here, "/api/v1/posts", n=5, headers=alice["auth"]) == [429] * 5
    assert spend(here, "/api/v1/tokens", headers=wrong) == [429]
    assert sum(hashing.values()) == spent
    # Another address is not affected.
    assert spend(client(app, "192.0.2.2"), "/api/v1/posts", headers=alice["auth"]) == [200]


def test_successful_logins_do_not_spend_the_failure_budget(limited, accounts):
    alice = accounts.create("alice")
    app = client(limited(**{"hyperapi.ratelimit.authentication_failures": "1/minute"}))
    assert spend(app, "/api/v1/posts", n=3, headers=alice["auth"]) == [200] * 3
    assert spend(app, "/api/v1/posts", headers=basic("alice", "nope")) == [401]
    assert spend(app, "/api/v1/posts", headers=basic("alice", "nope")) == [429]


def test_disabled_rate_limiting_adds_nothing(limited, accounts):
    app = client(
        limited(**{"hyperapi.ratelimit.enabled": "false", "hyperapi.ratelimit.default": "1/hour"})
    )
    for _ in range(3):
        assert "RateLimit" not in app.get("/api/v1/").headers
    assert not hasattr(app.app.registry, "authentication_guard")


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("hyperapi.ratelimit.routes", "POST nowhere = 1/minute", "no route named"),
        ("hyperapi.ratelimit.default", "often", "not a limit"),
        ("hyperapi.ratelimit.strategy", "token-bucket", "strategy"),
        ("hyperapi.ratelimit.storage_url", "carrier-pigeon://", "storage"),
    ],
)
def test_bad_rate_limit_settings_stop_the_start(app_factory, setting, value, message):
    with pytest.raises(ConfigurationError, match=message):
        app_factory(**{setting: value})


def sharing_redis(app_factory, redis_url, limit: str) -> list:
    """Two apps counting ``limit`` in one Redis, under keys of their own (two processes)."""
    shared = {
        "hyperapi.ratelimit.storage_url": redis_url,
        "hyperapi.ratelimit.key_prefix": f"test-{uuid.uuid4().hex}",
        "hyperapi.ratelimit.default": limit,
    }
    return [app_factory(**shared), app_factory(**shared)]


def test_apps_sharing_redis_allow_exactly_the_limit_under_concurrent_load(
    app_factory, redis_url, clean
):
    apps = sharing_redis(app_factory, redis_url, "25/minute")
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        testapp = client(apps[n % 2])
        start.wait()
        for _ in range(10):
            code = testapp.get("/api/v1/", status="*").status_int
            with lock:
                results.append(code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in apps:
        app.registry.database.dispose()
    assert Counter(results) == {200: 25, 429: 55}


def redis_commands(app) -> list[str]:
    """The commands ``app``'s limiter sends to Redis from now on, one per round trip."""
    connection = app.registry.ratelimiter.storage.get_connection()
    commands: list[str] = []
    original = connection.execute_command
    connection.execute_command = lambda *a, **k: commands.append(a[0]) or original(*a, **k)
    return commands


def test_apps_sharing_redis_refuse_at_the_quota_and_announce_the_reset_in_one_round_trip(
    app_factory, redis_url, clean
):
    apps = sharing_redis(app_factory, redis_url, "3 per 2 seconds")
    sent = [redis_commands(app) for app in apps]
    first, second = client(apps[0]), client(apps[1])
    started = time.monotonic()
    assert status(first.get("/api/v1/"))["r"] == 2
    assert status(second.get("/api/v1/"))["r"] == 1
    assert status(first.get("/api/v1/"))["r"] == 0
    refused = second.get("/api/v1/", status=429)
    assert status(refused) == {"name": "default", "r": 0, "t": int(refused.headers["Retry-After"])}
    assert 1 <= status(refused)["t"] <= 2
    assert 1 <= int(first.get("/api/v1/", status=429).headers["Retry-After"]) <= 2
    time.sleep(max(0.0, started + 2.2 - time.monotonic()))
    assert status(second.get("/api/v1/")) == {"name": "default", "r": 2, "t": 2}
    assert status(first.get("/api/v1/")) == {"name": "default", "r": 1, "t": 2}
    for app in apps:
        app.registry.database.dispose()
    # One round trip a request, but where a process first meets a window another began.
    assert sent[0] == ["EVALSHA", "EVALSHA", "EVALSHA", "EVALSHA", "TTL"]
    assert sent[1] == ["EVALSHA", "TTL", "EVALSHA", "EVALSHA"]


UNREACHABLE = {
    # Port 1 refuses connections at once: Redis is down, not slow.
    "hyperapi.ratelimit.storage_url": "redis://127.0.0.1:1/0",
    "hyperapi.ratelimit.default": "1/minute",
    "hyperapi.ratelimit.storage_retry": "0",
}


def test_unreachable_redis_fails_open_and_says_so_in_the_log(app_factory, clean, caplog):
    app = client(app_factory(**UNREACHABLE))
    with caplog.at_level(logging.WARNING, logger="hyperapi.ratelimit"):
        responses = [app.get("/api/v1/") for _ in range(5)]
    assert all(r.headers["RateLimit-Policy"] == '"default";q=1;w=60' for r in responses)
    assert all("RateLimit" not in r.headers for r in responses)
    warnings = [r for r in caplog.records if "storage unavailable" in r.getMessage()]
    assert len(warnings) == 1  # rate limited itself
    assert "failing open" in warnings[0].getMessage()
    app.app.registry.database.dispose()


def test_unreachable_redis_can_be_set_to_fail_closed(app_factory, clean):
    app = client(app_factory(**UNREACHABLE, **{"hyperapi.ratelimit.fail_open": "false"}))
    refused = app.get("/api/v1/", status=503)
    assert refused.json["type"].endswith("/problems/service-unavailable")
    assert int(refused.headers["Retry-After"]) >= 1
    # The failed-login guard cannot count either, so it refuses before hashing too.
    app.get("/api/v1/posts", headers=basic("alice", "wrong"), status=503)
    app.app.registry.database.dispose()


def test_heartbeat_reports_an_unreachable_counter_store(app_factory, clean):
    app = client(app_factory(**UNREACHABLE))
    response = app.get("/__heartbeat__", status=503)
    assert response.json["ratelimit"] is False
    app.app.registry.database.dispose()


def test_a_basic_request_with_no_failures_recorded_asks_redis_for_the_count_alone(
    app_factory, redis_url, accounts, clean
):
    alice = accounts.create("alice")
    app = app_factory(
        **{
            "hyperapi.ratelimit.storage_url": redis_url,
            "hyperapi.ratelimit.key_prefix": f"test-{uuid.uuid4().hex}",
            "hyperapi.ratelimit.routes": "",
            "hyperapi.ratelimit.authentication_failures": "2/minute",
        }
    )
    here = client(app)
    here.get("/api/v1/")  # Redis loads the Lua script on its first use
    sent = redis_commands(app)

    def commands(headers, expected: int) -> list[str]:
        here.get("/api/v1/posts", headers=headers, status=expected)
        asked, sent[:] = sent[:], []
        return asked

    # The guard's count (GET), then the request's own budget (the tween's EVALSHA).
    assert commands(alice["auth"], 200) == ["GET", "EVALSHA"]
    assert commands(alice["auth"], 200) == ["GET", "EVALSHA"]
    # Once a failure is counted, the guard asks for its window's reset (TTL) as well.
    assert commands(basic("alice", "nope"), 401) == ["GET", "EVALSHA", "EVALSHA"]
    assert commands(alice["auth"], 200) == ["GET", "TTL", "EVALSHA"]
    assert commands(basic("alice", "nope"), 401) == ["GET", "TTL", "EVALSHA", "EVALSHA"]
    refused = here.get("/api/v1/posts", headers=alice["auth"], status=429)
    assert sent == ["GET", "TTL"]
    assert refused.json["violated-policies"] == ["authentication-failures"]
    assert 59 <= int(refused.headers["Retry-After"]) <= 60
    assert status(refused) == {
        "name": "authentication-failures",
        "r": 0,
        "t": int(refused.headers["Retry-After"]),
    }
