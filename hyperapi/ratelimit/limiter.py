"""Counting requests against policies with the ``limits`` library, and what a refusal says.

Counters live in the storage named by ``hyperapi.ratelimit.storage_url``: ``memory://`` (the
default) counts in this process only; ``redis://host:6379/0`` counts in Redis, where every
hit is one atomic Lua script, so every process and machine sharing that Redis shares one
budget. ``hyperapi.ratelimit.strategy`` picks the ``limits`` strategy:

- ``fixed-window`` (the default): a counter that starts at a client's first request and
  resets ``w`` seconds later. One counter per client, and exactly the model the RateLimit
  fields describe (``r`` requests left, reset in ``t`` seconds). A client can send up to
  twice its quota across a window boundary.
- ``sliding-window-counter``: weighs the previous window's count, smoothing that boundary
  burst, at the cost of two counters and an approximate ``t``.
- ``moving-window``: exact over any ``w``-second span, but stores one timestamp per request
  (``q`` entries per client).

A fixed-window hit costs one storage call (one Redis round trip) for nearly every request.
The count comes from the increment; the reset, which the ``RateLimit`` field needs too, would
cost a second call (a TTL). But a fixed window's counter gets its expiry only from the
increment that creates it (the library's ``incr_expire.lua``), so its reset never moves, and
the limiter remembers it for the last ``remembered_windows`` counters hit. It knows the reset
without asking when its own increment created the counter (the count is 1), and asks once
when another process did or it had forgotten the counter, when the remembered reset is less
than a second away (a TTL is in whole seconds), and when the count is no higher than the last
it saw (the counter was deleted and created anew). What it remembers only shapes the advisory
``t``: counting and refusing are the storage's alone. One case goes unseen: a counter deleted
before its time (by an operator, or evicted by Redis) and created anew by another process that
counts past this process's last count before this process's next hit. Until the old window's
reset this process announces that earlier reset: a ``t`` too small by at most what the old
window had left, and never below 1 second.

A fixed-window peek (the failed-authentication guard asks one before every password check)
reads the count, and asks for the reset only when the count is not 0: with no failures
recorded, the common case, it is one storage call.

When the storage cannot be reached the limiter *fails open* (the request is served,
unlimited, without a ``RateLimit`` field) or, with ``hyperapi.ratelimit.fail_open = false``,
closed (503). Either way it logs a warning at most once a minute, and leaves the storage alone
for ``hyperapi.ratelimit.storage_retry`` seconds so that a dead Redis does not add a timeout
to every request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import limits
from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import STRATEGIES

from ..errors import Problem
from .policies import Policy

log = logging.getLogger(__name__)

#: How often the "storage unavailable" warning may be logged.
WARNING_LIMIT = limits.parse("1/minute")
#: How far a reset learned from the storage may be off: Redis gives TTLs in whole seconds,
#: rounded to the nearest one, so a reset is remembered as trustworthy until 1 s before it.
TTL_PRECISION = 1.0


class LazyMemoryStorage(MemoryStorage):
    """The ``limits`` library's in-memory storage, without its expiry timer thread.

    ``MemoryStorage`` starts a ``threading.Timer(0.01)`` on every hit whose previous timer has
    run, so under load a new thread about every 10 ms, and each start waits for the new
    thread to be scheduled: the largest single item in a profile of a 304. Its counters
    need no timer (``get`` drops an expired key as it reads it); the sweep only frees the
    keys of clients that stopped asking (and moving-window timestamps). Here the library's
    own sweep runs on the request's thread, at most once every ``sweep_interval`` seconds,
    by one thread at a time.
    """

    def __init__(self, uri: str | None = None, *, sweep_interval: float = 1.0, **options):
        super().__init__(uri, **options)
        self.timer.cancel()  # the one the constructor started
        self.sweep_interval = sweep_interval
        self.next_sweep = 0.0
        self.sweeping = threading.Lock()

    # MemoryStorage calls its private __schedule_expiry before each change (the name is
    # mangled, so this is the only way to replace it).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self.next_sweep or not self.sweeping.acquire(blocking=False):
            return
        try:
            self.next_sweep = now + self.sweep_interval
            self._MemoryStorage__expire_events()
        finally:
            self.sweeping.release()


class Window(NamedTuple):
    """What this process knows of one fixed window, in ``time.monotonic()`` seconds."""

    resets: float
    #: Until when ``resets`` can be used without asking the storage.
    trusted_until: float
    #: The last count this process saw in the window.
    count: int


class Windows:
    """The fixed windows this process has seen lately, by counter key: at most ``capacity``.

    The least recently hit are forgotten first, at no cost but a storage call the next time.
    Every change holds a lock, so that request threads never see the dict change as it is
    trimmed; a read is one ``dict.get``. Two threads hitting one counter at once may store
    their counts out of order, which costs at most one more call.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.known: dict[str, Window] = {}
        self.lock = threading.Lock()

    def get(self, counter: str) -> Window | None:
        return self.known.get(counter)

    def remember(self, counter: str, window: Window) -> None:
        with self.lock:
            # Dicts keep insertion order: taken out and put back, the counter goes last.
            self.known.pop(counter, None)
            self.known[counter] = window
            if len(self.known) > self.capacity:
                del self.known[next(iter(self.known))]

    def clear(self) -> None:
        with self.lock:
            self.known.clear()


@dataclass(frozen=True)
class Outcome:
    """What the limiter decided for one request under one policy."""

    policy: Policy
    allowed: bool
    #: Requests left and seconds until the quota resets; None when the storage did not answer.
    remaining: int | None = None
    reset_after: int | None = None

    @property
    def known(self) -> bool:
        return self.remaining is not None

    def headers(self) -> dict[str, str]:
        """The draft-ietf-httpapi-ratelimit-headers fields for this outcome."""
        headers = {"RateLimit-Policy": self.policy.announcement()}
        if self.remaining is not None and self.reset_after is not None:
            headers["RateLimit"] = self.policy.status(self.remaining, self.reset_after)
        return headers


def quota_exceeded(outcome: Outcome, detail: str | None = None) -> Problem:
    """429 (RFC 6585 §4) with ``Retry-After`` (RFC 9110 §10.2.3) and the RateLimit fields."""
    retry_after = max(1, outcome.reset_after or 1)
    return Problem(
        "quota-exceeded",
        detail
        or f"Too many requests: policy {outcome.policy.name!r} allows "
        f"{outcome.policy.quota} every {outcome.policy.window} seconds. "
        f"Retry in {retry_after} seconds.",
        headers={**outcome.headers(), "Retry-After": str(retry_after)},
        **{"violated-policies": [outcome.policy.name]},
    )


def limiter_unavailable(outcome: Outcome, retry_after: float) -> Problem:
    """503 when the counters cannot be reached and the limiter is set to fail closed."""
    return Problem(
        "service-unavailable",
        "Requests cannot be counted against their rate limit just now; retry shortly.",
        headers={**outcome.headers(), "Retry-After": str(max(1, math.ceil(retry_after)))},
    )


class Limiter:
    """A ``limits`` strategy over a storage, with the failure behaviour described above."""

    def __init__(
        self,
        storage_url: str = "memory://",
        strategy: str = "fixed-window",
        *,
        fail_open: bool = True,
        key_prefix: str = "hyperapi",
        timeout: float = 0.25,
        retry_interval: float = 1.0,
        clock=time.monotonic,
        remembered_windows: int = 10_000,
    ):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
        options: dict = {"wrap_exceptions": True}
        self.shared = not storage_url.startswith("memory")
        if storage_url.split(":", 1)[0] in ("redis", "rediss", "redis+unix"):
            options.update(
                key_prefix=key_prefix, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        try:
            if self.shared:
                self.storage = storage_from_string(storage_url, **options)
            else:
                self.storage = LazyMemoryStorage(storage_url, **options)
        except limits.errors.ConfigurationError as exc:
            raise ValueError(f"storage {storage_url!r}: {exc}") from None
        self.strategy = STRATEGIES[strategy](self.storage)
        self.sliding = strategy == "sliding-window-counter"
        self.fixed = strategy == "fixed-window"
        self.windows = Windows(remembered_windows)
        self.fail_open = fail_open
        self.retry_interval = retry_interval
        self.clock = clock
        self.unavailable_until = 0.0
        # Even the warning about an unavailable storage is rate limited, in memory.
        self.warnings = STRATEGIES["fixed-window"](LazyMemoryStorage())

    @classmethod
    def from_settings(cls, settings) -> Limiter:
        return cls(
            settings["hyperapi.ratelimit.storage_url"] or "memory://",
            settings["hyperapi.ratelimit.strategy"],
            fail_open=settings["hyperapi.ratelimit.fail_open"],
            key_prefix=settings["hyperapi.ratelimit.key_prefix"],
            timeout=settings["hyperapi.ratelimit.storage_timeout"],
            retry_interval=settings["hyperapi.ratelimit.storage_retry"],
        )

    def hit(self, policy: Policy, key: str) -> Outcome:
        """Count one request of ``key`` against ``policy``."""
        return self._ask(policy, key, consume=True)

    def peek(self, policy: Policy, key: str) -> Outcome:
        """Whether ``key`` has quota left under ``policy``, without counting a request."""
        return self._ask(policy, key, consume=False)

    def check(self) -> bool:
        """Whether the storage answers (for ``/__heartbeat__``)."""
        try:
            return bool(self.storage.check())
        except Exception:  # any failure means "not ready"; the reason goes to the log
            log.warning("rate limit storage check failed", exc_info=True)
            return False

    def _ask(self, policy: Policy, key: str, *, consume: bool) -> Outcome:
        if self.clock() < self.unavailable_until:
            return Outcome(policy, allowed=self.fail_open)
        item = policy.limit
        try:
            if consume and self.fixed:
                count, reset_in = self._fixed_window_hit(item, policy.name, key)
                allowed = count <= item.amount
                remaining = max(0, item.amount - count)
            elif self.fixed:
                count, reset_in = self._fixed_window_peek(item, policy.name, key)
                remaining = max(0, item.amount - count)
            else:
                allowed = self.strategy.hit(item, policy.name, key) if consume else True
                reset_at, remaining = self.strategy.get_window_stats(item, policy.name, key)
                reset_in = reset_at - time.time()
        except StorageError as exc:
            return self._unavailable(policy, exc.storage_error)
        reset_after = max(0, math.ceil(reset_in))
        if reset_after == 0 and remaining < item.amount:
            # The quota has not reset, so "0 seconds" cannot be right: Redis gives TTLs in
            # whole seconds rounded to the nearest, and the library's sliding-window-counter
            # estimate (a remainder modulo the window) wraps to 0 when a whole window is left.
            reset_after = policy.window if self.sliding else 1
        if not consume:
            allowed = remaining > 0
        return Outcome(policy, allowed=allowed, remaining=remaining, reset_after=reset_after)

    def _fixed_window_hit(self, item: RateLimitItem, *identifiers: str) -> tuple[int, float]:
        """FixedWindowRateLimiter.hit and get_window_stats, nearly always in one storage call.

        Returns the count after this hit and the seconds until its window resets. The count
        is the increment's answer (the strategy's hit returns only a yes or no); the reset is
        remembered, as the module docstring explains, or else asked of the storage.
        """
        counter = item.key_for(*identifiers)
        expiry = item.get_expiry()
        sent = time.monotonic()
        count = self.storage.incr(counter, expiry)
        now = time.monotonic()
        if count == 1:
            # This increment created the counter, and the storage gave it its expiry in the
            # same step (incr_expire.lua), after ``sent``: it resets no earlier than this.
            resets = sent + expiry
            self.windows.remember(counter, Window(resets, resets, count))
            return count, resets - now
        known = self.windows.get(counter)
        if known is not None and now < known.trusted_until and count > known.count:
            self.windows.remember(counter, Window(known.resets, known.trusted_until, count))
            return count, known.resets - now
        # get_expiry is an instant on the wall clock (time.time() plus the TTL): kept as the
        # time left, so that a step of the wall clock cannot stretch a remembered window.
        reset_in = self.storage.get_expiry(counter) - time.time()
        now = time.monotonic()
        self.windows.remember(
            counter, Window(now + reset_in, now + reset_in - TTL_PRECISION, count)
        )
        return count, reset_in

    def _fixed_window_peek(self, item: RateLimitItem, *identifiers: str) -> tuple[int, float]:
        """FixedWindowRateLimiter.get_window_stats, in one storage call when nothing is counted.

        Returns the count and the seconds until its window resets. A count of 0 means there
        is no counter (increments create it), so no window and no reset to ask for: 0 seconds,
        as the storage answers for a missing key (Redis's TTL of -2, floored at 0).
        """
        counter = item.key_for(*identifiers)
        count = self.storage.get(counter)
        if count == 0:
            return 0, 0.0
        return count, self.storage.get_expiry(counter) - time.time()

    def _unavailable(self, policy: Policy, error: Exception) -> Outcome:
        self.unavailable_until = self.clock() + self.retry_interval
        # The storage may come back empty, or be another server: trust nothing remembered.
        self.windows.clear()
        if self.warnings.hit(WARNING_LIMIT, "storage-unavailable"):
            log.warning(
                "rate limit storage unavailable (%s: %s); failing %s",
                type(error).__name__,
                error,
                "open: requests are not limited" if self.fail_open else "closed: 503",
            )
        return Outcome(policy, allowed=self.fail_open)
