"""Rate-limit policies, their header fields, and the limiter's decisions (memory storage)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from limits.errors import StorageError
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


@pytest.fixture
def on_redis(redis_url) -> Iterator:
    """``on_redis()``: a fixed-window limiter on Redis; all of a test's share one key prefix.

    Each has a ``sent`` list: the Redis commands it sends from then on, one per round trip.
    """
    prefix = f"test-{uuid.uuid4().hex}"
    limiters = []

    def make() -> Limiter:
        limiter = Limiter(redis_url, key_prefix=prefix)
        # Redis loads the Lua script on its first use: not a round trip of the hit path.
        limiter.hit(parse_limit("1/minute", name="warm-up"), "k")
        client = limiter.storage.get_connection()
        limiter.sent = []
        original = client.execute_command
        client.execute_command = lambda *a, **k: limiter.sent.append(a[0]) or original(*a, **k)
        limiters.append(limiter)
        return limiter

    yield make
    if limiters:
        limiters[0].storage.reset()


def delete_behind_the_back(redis_url: str, limiter: Limiter) -> None:
    """Delete every counter of ``limiter``'s prefix, as an operator or a test run would."""
    client = redis.Redis.from_url(redis_url)
    client.delete(*client.scan_iter(match=limiter.storage.key_prefix + ":*"))
    client.close()


def sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.monotonic()))


def test_a_fixed_window_hit_on_redis_is_one_round_trip(on_redis):
    limiter = on_redis()
    policy = parse_limit("3/minute", name="default")
    outcomes = [limiter.hit(policy, "k") for _ in range(4)]
    assert limiter.sent == ["EVALSHA"] * 4
    assert [o.remaining for o in outcomes] == [2, 1, 0, 0]
    assert [o.allowed for o in outcomes] == [True, True, True, False]
    assert all(59 <= o.reset_after <= 60 for o in outcomes)


def test_a_second_limiter_on_the_same_redis_asks_the_reset_once_per_window(on_redis):
    first, second = on_redis(), on_redis()
    policy = parse_limit("3/minute", name="default")
    assert first.hit(policy, "k").remaining == 2
    outcomes = [second.hit(policy, "k") for _ in range(3)]
    assert second.sent == ["EVALSHA", "TTL", "EVALSHA", "EVALSHA"]
    assert [o.remaining for o in outcomes] == [1, 0, 0]
    assert [o.allowed for o in outcomes] == [True, True, False]
    assert all(59 <= o.reset_after <= 60 for o in outcomes)
    # The first limiter saw the window begin, and still needs no second call.
    refused = first.hit(policy, "k")
    assert first.sent == ["EVALSHA", "EVALSHA"]
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert 59 <= refused.reset_after <= 60


def test_the_reset_stays_right_across_a_window_boundary_on_two_limiters(on_redis):
    first, second = on_redis(), on_redis()
    policy = parse_limit("3 per 2 seconds", name="default")
    started = time.monotonic()
    assert status(first.hit(policy, "k")) == (True, 2, 2)
    assert status(second.hit(policy, "k")) == (True, 1, 2)
    # Past the middle of the window: less than a second left, at the quota.
    sleep_until(started + 1.2)
    assert status(first.hit(policy, "k")) == (True, 0, 1)
    assert status(second.hit(policy, "k")) == (False, 0, 1)
    # The next window: each limiter learns its reset, without a call where it can.
    sleep_until(started + 2.2)
    assert status(second.hit(policy, "k")) == (True, 2, 2)
    assert status(first.hit(policy, "k")) == (True, 1, 2)
    assert first.sent == ["EVALSHA", "EVALSHA", "EVALSHA", "TTL"]
    # The second's reset was learned from a TTL (whole seconds): in its last second, it asks.
    assert second.sent == ["EVALSHA", "TTL", "EVALSHA", "TTL", "EVALSHA"]


def status(outcome: Outcome) -> tuple[bool, int | None, int | None]:
    return outcome.allowed, outcome.remaining, outcome.reset_after


def test_a_fixed_window_peek_asks_redis_for_the_reset_only_once_something_was_counted(on_redis):
    limiter = on_redis()
    policy = parse_limit("2/minute", name="authentication-failures")
    # No counter, no window: nothing to reset, and the count alone says yes.
    assert status(limiter.peek(policy, "k")) == (True, 2, 0)
    assert limiter.sent == ["GET"]
    # Once a failure is counted, the peek asks for its window's reset too, as before.
    for expected in [(True, 1), (False, 0)]:
        limiter.hit(policy, "k")
        limiter.sent.clear()
        outcome = limiter.peek(policy, "k")
        assert (outcome.allowed, outcome.remaining) == expected
        assert 59 <= outcome.reset_after <= 60
        assert limiter.sent == ["GET", "TTL"]


def test_a_memory_peek_with_nothing_counted_answers_as_before():
    limiter = Limiter("memory://")
    policy = parse_limit("2/minute", name="authentication-failures")
    assert status(limiter.peek(policy, "k")) == (True, 2, 0)
    limiter.hit(policy, "k")
    assert status(limiter.peek(policy, "k")) == (True, 1, 60)


def test_a_counter_deleted_behind_the_limiters_back_starts_a_fresh_window(on_redis, redis_url):
    first, second = on_redis(), on_redis()
    policy = parse_limit("5 per 10 seconds", name="default")
    started = time.monotonic()
    first.hit(policy, "k")
    assert [second.hit(policy, "k").remaining for _ in range(2)] == [3, 2]
    # A second later the old window has 9 seconds left, a new one 10.
    sleep_until(started + 1.1)
    delete_behind_the_back(redis_url, first)
    # The limiter whose increment creates the counter again knows the new reset...
    assert status(first.hit(policy, "k")) == (True, 4, 10)
    assert first.sent == ["EVALSHA", "EVALSHA"]
    # ...and one that counted further in the old window sees the count go back, and asks.
    assert status(second.hit(policy, "k")) == (True, 3, 10)
    assert second.sent == ["EVALSHA", "TTL", "EVALSHA", "EVALSHA", "TTL"]


def test_a_memory_counter_cleared_behind_the_limiters_back_starts_a_fresh_window():
    limiter = Limiter("memory://")
    policy = parse_limit("3 per 10 seconds", name="default")
    assert [limiter.hit(policy, "k").allowed for _ in range(4)] == [True] * 3 + [False]
    limiter.storage.clear(policy.limit.key_for(policy.name, "k"))
    assert status(limiter.hit(policy, "k")) == (True, 2, 10)


def test_the_limiter_remembers_a_bounded_number_of_windows():
    limiter = Limiter("memory://", remembered_windows=3)
    policy = parse_limit("5/minute", name="default")
    for n in range(10):
        limiter.hit(policy, f"client-{n}")
    assert list(limiter.windows.known) == [
        policy.limit.key_for(policy.name, f"client-{n}") for n in (7, 8, 9)
    ]
    # A forgotten window is asked for again, and still right.
    assert status(limiter.hit(policy, "client-0")) == (True, 3, 60)
    assert len(limiter.windows.known) == 3


def test_threads_hitting_many_counters_keep_the_limiter_consistent():
    limiter = Limiter("memory://", remembered_windows=8)
    policy = parse_limit("1000/minute", name="default")
    outcomes: list[Outcome] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        outcomes.extend(limiter.hit(policy, f"client-{(n + i) % 40}") for i in range(400))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 8 * 400
    assert all(o.allowed and 59 <= o.reset_after <= 60 for o in outcomes)
    assert len(limiter.windows.known) <= 8
    assert sum(1000 - limiter.peek(policy, f"client-{n}").remaining for n in range(40)) == 3200


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_reset_the_storage_cannot_give_fails_as_configured(fail_open):
    limiter = Limiter("memory://", fail_open=fail_open)
    policy = parse_limit("5/minute", name="default")
    limiter.hit(policy, "remembered")
    # Another process created this counter, so the limiter must ask for its reset.
    limiter.storage.incr(policy.limit.key_for(policy.name, "k"), policy.window)

    def unavailable(key):
        raise StorageError(ConnectionError("gone"))

    limiter.storage.get_expiry = unavailable
    outcome = limiter.hit(policy, "k")
    assert (outcome.allowed, outcome.known) == (fail_open, False)
    assert limiter.windows.known == {}
