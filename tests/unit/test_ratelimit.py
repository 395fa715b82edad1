"""Rate-limit policies, their header fields, and the limiter's decisions (memory storage)."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from limits.storage import memory

from hyperapi.ratelimit import Limiter, Outcome, Policies
from hyperapi.ratelimit.limiter import LazyMemoryStorage
from hyperapi.ratelimit.policies import parse_limit, parse_routes
from hyperapi.settings import DEFAULTS, parse


def test_policy_announces_quota_and_window_as_structured_fields():
    policy = parse_limit("10 per 30 seconds", name="default")
    assert policy.announcement() == '"default";q=10;w=30'
    assert policy.status(remaining=7, reset_after=12) == '"default";r=7;t=12'


def test_route_lines_give_a_policy_per_method_and_route():
    routes = parse_routes("\n  POST tokens = 10/minute\n\n  * users.item = 5/hour\n")
    assert [(r.method, r.route, r.policy.name) for r in routes] == [
        ("POST", "tokens", "post-tokens"),
        ("*", "users.item", "users.item"),
    ]
    assert routes[0].policy.quota == 10 and routes[0].policy.window == 60
    assert routes[1].applies_to("DELETE") and not routes[0].applies_to("GET")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("POST tokens", "expected"),
        ("POST tokens = lots", "is not a limit"),
        ("POST tokens = 10/second;100/minute", "one limit per policy"),
        ("POST tokens = 1/minute\npost tokens = 2/minute", "limited twice"),
        ("POST tokens = 0/minute", "at least 1"),
    ],
)
def test_bad_route_lines_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_routes(text)


def test_default_settings_parse_into_the_documented_policies():
    policies = Policies.from_settings(parse({}, environ={}))
    assert policies.default.announcement() == '"default";q=300;w=60'
    assert {(r.method, r.route) for r in policies.routes} == {
        ("POST", "tokens"),
        ("POST", "users.collection"),
    }
    assert policies.failures.announcement() == '"authentication-failures";q=10;w=60'
    assert "health.heartbeat" in policies.exempt
    assert DEFAULTS["hyperapi.ratelimit.strategy"][0] == "fixed-window"


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_limiter_allows_the_quota_then_refuses(strategy):
    limiter = Limiter("memory://", strategy)
    policy = parse_limit("3/minute", name="default")
    outcomes = [limiter.hit(policy, "addr:192.0.2.1") for _ in range(4)]
    assert [o.allowed for o in outcomes] == [True, True, True, False]
    assert [o.remaining for o in outcomes] == [2, 1, 0, 0]
    assert all(0 < o.reset_after <= 60 for o in outcomes)
    assert limiter.hit(policy, "addr:192.0.2.2").allowed


def test_peek_does_not_count():
    limiter = Limiter("memory://")
    policy = parse_limit("1/minute", name="failures")
    for _ in range(3):
        assert limiter.peek(policy, "k").allowed
    limiter.hit(policy, "k")
    assert not limiter.peek(policy, "k").allowed


def test_outcome_without_an_answer_announces_the_policy_but_no_status():
    policy = parse_limit("3/minute", name="default")
    assert Outcome(policy, allowed=True).headers() == {"RateLimit-Policy": '"default";q=3;w=60'}


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy"):
        Limiter("memory://", "leaky-bucket")


def test_unknown_storage_is_refused():
    with pytest.raises(ValueError, match="storage"):
        Limiter("carrier-pigeon://coop")


@pytest.mark.parametrize("fail_open", [True, False])
def test_unreachable_storage_fails_as_configured_and_warns_once(fail_open, caplog):
    # Port 1 refuses connections at once: the storage is down, not slow.
    limiter = Limiter("redis://127.0.0.1:1/0", fail_open=fail_open, retry_interval=0)
    policy = parse_limit("3/minute", name="default")
    with caplog.at_level(logging.WARNING, logger="hyperapi.ratelimit"):
        outcomes = [limiter.hit(policy, "k") for _ in range(5)]
    assert all(o.allowed is fail_open and not o.known for o in outcomes)
    warnings = [r for r in caplog.records if "storage unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert ("open" if fail_open else "closed") in warnings[0].getMessage()


def test_after_a_failure_the_storage_is_left_alone_for_the_retry_interval():
    now = [100.0]
    limiter = Limiter("redis://127.0.0.1:1/0", retry_interval=5, clock=lambda: now[0])
    policy = parse_limit("3/minute", name="default")
    calls = []
    original = limiter.storage.incr
    limiter.storage.incr = lambda *a, **k: calls.append(a) or original(*a, **k)
    limiter.hit(policy, "k")
    limiter.hit(policy, "k")
    assert len(calls) == 1
    now[0] += 5
    limiter.hit(policy, "k")
    assert len(calls) == 2


def test_memory_storage_starts_no_timer_thread_per_hit(monkeypatch):
    limiter = Limiter("memory://")
    policy = parse_limit("1000/minute", name="default")
    started = []
    monkeypatch.setattr(memory.threading, "Timer", lambda *a, **k: started.append(a))
    for n in range(200):
        limiter.hit(policy, f"client-{n % 7}")
    assert started == []
    assert limiter.peek(policy, "client-0").remaining == 1000 - 29


def test_memory_storage_still_forgets_expired_clients():
    storage = LazyMemoryStorage(sweep_interval=0)
    storage.incr("gone", 0.01)
    storage.acquire_entry("gone-too", limit=5, expiry=0.01)
    time.sleep(0.02)
    storage.incr("kept", 60)
    assert set(storage.storage) == {"kept"}
    assert storage.events.get("gone-too") == []  # the library keeps the emptied list


def test_a_fixed_window_hit_on_redis_is_two_round_trips(redis_url):
    limiter = Limiter(redis_url, key_prefix=f"test-{uuid.uuid4().hex}")
    policy = parse_limit("3/minute", name="default")
    client = limiter.storage.get_connection()
    commands = []
    original = client.execute_command
    client.execute_command = lambda *a, **k: commands.append(a[0]) or original(*a, **k)
    outcomes = [limiter.hit(policy, "k") for _ in range(4)]
    assert len(commands) == 2 * 4, commands
    assert [o.remaining for o in outcomes] == [2, 1, 0, 0]
    assert [o.allowed for o in outcomes] == [True, True, True, False]
    assert all(0 < o.reset_after <= 60 for o in outcomes)
