"""Rows remembered between reads, forgotten when PostgreSQL says they changed.

An authenticated item GET reads one statement: the credentials' user, the token's
revocation and the item's row (hyperapi.resources.prefetch). On PostgreSQL that round trip
is most of a 304's time, and the rows it reads rarely change. With ``hyperapi.row_cache =
true`` each process keeps the statement's answer (:class:`RowCache`) and PostgreSQL tells
every process which rows changed:

- Triggers (migration 0002) send ``NOTIFY hyperapi_changes, '<table> <key>'`` for each row
  inserted, updated or deleted in the tables a read remembers, and ``'<table> *'`` when
  one is truncated. A trigger sees every write: the ORM's, bulk UPDATEs, cascades, psql.
- Each process runs a :class:`ChangeListener` thread on a connection of its own that
  LISTENs and forgets each entry the moment its row's notification arrives.

What makes a remembered row safe to use is that the listener *proves* it is up to date:

- Every ``max_staleness / 4`` seconds it sends a marker through the channel on its own
  connection. PostgreSQL delivers notifications in commit order, so when the marker comes
  back, every change committed before it was sent has been applied. Entries are used only
  until ``max_staleness`` after the last marker that came back was sent: an answer from
  memory is never older than that, whatever happens to the listener (a stalled thread, a
  network that drops packets silently). Normally a change is applied within a millisecond.
- A lost connection forgets everything; nothing is remembered again until the listener
  has reconnected, LISTENed and seen a marker come back.
- A read that raced a change cannot put back what the change made stale: every change
  bumps a generation number, and an entry read before it is not stored.
- The process that writes sees its own writes at once: a write transaction sends a marker
  of its own before it commits, and the request waits (at most ``max_staleness``) for the
  listener to receive it, after the row notifications of that same transaction.
- Only reads (GET, HEAD, OPTIONS) use remembered rows. A write authenticates against the
  database itself, so a revoked token or a changed password can never write anything,
  and its compare-and-swap always runs against the row.

So a revocation, a password change or an edit made through any process is seen by every
other process within ``max_staleness`` seconds (a second by default), and in practice at
once; that is the contract's "revocation holds on every server process", with the delay
stated. Without ``hyperapi.row_cache`` every read asks the database, as before.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from typing import Any

log = logging.getLogger(__name__)

#: The channel the triggers notify and the listeners LISTEN on.
CHANNEL = "hyperapi_changes"
#: Tables whose rows a read remembers, with the column that names a row in notifications.
NOTIFYING_TABLES = {
    "users": "id",
    "posts": "id",
    "students": "id",
    "classes": "id",
    "registrations": "id",
    "revoked_tokens": "token_id",
}
#: The payload prefix of the markers (a table name never has a colon).
MARKER = "sync:"
#: What :meth:`RowCache.get` returns for a key it cannot answer.
MISSING = object()


class RowCache:
    """Entries (key -> value) that each depend on some rows, named ``"<table> <key>"``.

    ``get`` is lock-free: a dict lookup after a freshness check. Changes to the entries take
    the lock. See the module for when entries may be used and stored.
    """

    def __init__(self, max_entries: int = 10000, clock=time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        self.entries: dict[Any, tuple[Any, tuple[str, ...]]] = {}
        #: Row name -> keys of the entries that depend on it.
        self.dependents: dict[str, set] = {}
        #: Bumped by every change, so a read that raced one is not stored.
        self.generation = 0
        #: Entries may be used until this instant of ``clock``.
        self.fresh_until = 0.0
        self.lock = threading.Lock()
        #: The listener that keeps it in step (set by ChangeListener).
        self.listener: ChangeListener | None = None
        _ALL.add(self)

    def get(self, key) -> Any:
        """The value remembered for ``key``, or MISSING (none, or not known to be fresh)."""
        if self.clock() >= self.fresh_until:
            return MISSING
        found = self.entries.get(key)
        return MISSING if found is None else found[0]

    def snapshot(self) -> int | None:
        """What to hand to :meth:`put` after reading; None when nothing may be stored now."""
        generation = self.generation
        return generation if self.clock() < self.fresh_until else None

    def put(self, snapshot: int | None, key, value, depends_on: tuple[str, ...]) -> bool:
        """Remember ``value`` unless anything changed since ``snapshot`` was taken."""
        if snapshot is None:
            return False
        with self.lock:
            if snapshot != self.generation or self.clock() >= self.fresh_until:
                return False
            if key not in self.entries and len(self.entries) >= self.max_entries:
                self._drop(next(iter(self.entries)))  # the oldest
            self._drop(key)
            self.entries[key] = (value, depends_on)
            for row in depends_on:
                self.dependents.setdefault(row, set()).add(key)
            return True

    def _drop(self, key) -> None:
        found = self.entries.pop(key, None)
        if found is None:
            return
        for row in found[1]:
            keys = self.dependents.get(row)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.dependents[row]

    def changed(self, row: str) -> None:
        """Row ``"<table> <key>"`` changed (``"<table> *"``: every row of the table)."""
        with self.lock:
            self.generation += 1
            if row.endswith(" *"):
                table = row[:-1]
                for name in [name for name in self.dependents if name.startswith(table)]:
                    for key in list(self.dependents.get(name, ())):
                        self._drop(key)
                return
            for key in list(self.dependents.get(row, ())):
                self._drop(key)

    def confirm(self, sent_at: float, max_staleness: float) -> None:
        """A marker sent at ``sent_at`` came back: entries are good until ``max_staleness``
        after it."""
        with self.lock:
            self.fresh_until = max(self.fresh_until, sent_at + max_staleness)

    def forget(self) -> None:
        """Forget everything, and remember nothing until the next :meth:`confirm`."""
        with self.lock:
            self.generation += 1
            self.fresh_until = 0.0
            self.entries.clear()
            self.dependents.clear()

    def __len__(self) -> int:
        return len(self.entries)


#: Every cache of the process, forgotten in a forked child (whose listener did not fork).
_ALL: weakref.WeakSet[RowCache] = weakref.WeakSet()


def _forget_all_in_child() -> None:
    for cache in list(_ALL):
        cache.forget()
        if cache.listener is not None:
            cache.listener.forked()


os.register_at_fork(after_in_child=_forget_all_in_child)


class ChangeListener:
    """The thread that keeps a :class:`RowCache` in step with the database (see the module).

    It starts on the first read that finds the cache not fresh, so that a server that forks
    its workers after loading the application gets one listener per worker.
    """

    def __init__(self, engine, cache: RowCache, max_staleness: float):
        self.engine = engine
        self.cache = cache
        cache.listener = self
        self.max_staleness = max_staleness
        self.interval = max_staleness / 4
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.tag = f"{os.getpid()}.{id(self):x}"
        self.counter = itertools.count(1)
        #: Markers sent and not yet back: marker -> (sent at, event set on its return).
        self.pending: dict[str, tuple[float, threading.Event | None]] = {}
        #: Whether a connection is LISTENing now, and its server process.
        self.listening = False
        self.backend_pid: int | None = None
        #: When the next warning about a lost listener may be logged (one a minute).
        self.next_warning = 0.0

    # -- the requests' side --

    def ensure_running(self) -> None:
        """Start the thread unless it runs (cheap; called when the cache is not fresh)."""
        thread = self.thread
        if (thread is not None and thread.is_alive()) or self.stopping.is_set():
            return
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                return
            self.thread = threading.Thread(
                target=self.run, name="hyperapi-change-listener", daemon=True
            )
            self.thread.start()

    def marker(self) -> tuple[str, threading.Event] | None:
        """A marker for a write transaction to send before it commits, and the event its
        return sets; None when no connection listens (nothing is remembered then)."""
        if not self.listening:
            return None
        name = f"{self.tag}:w{next(self.counter)}"
        event = threading.Event()
        self.pending[name] = (self.cache.clock(), event)
        return MARKER + name, event

    def discard(self, marker: str) -> None:
        self.pending.pop(marker.removeprefix(MARKER), None)

    def wait(self, marker: str, event: threading.Event) -> None:
        """Wait until ``marker``'s transaction's changes are applied; forget all on timeout."""
        if not event.wait(self.max_staleness):
            self.discard(marker)
            log.warning("row cache: a write's changes did not come back in time; forgetting")
            self.cache.forget()

    def ready(self, timeout: float = 5.0) -> bool:
        """Start listening and wait until reads may use the cache (for tests and warm-up)."""
        return self._wait_for(lambda: self.cache.snapshot() is not None, timeout)

    def caught_up(self, timeout: float = 5.0) -> bool:
        """Wait until every change committed before this call has been applied."""
        needed = self.cache.clock() + self.max_staleness
        return self._wait_for(lambda: self.cache.fresh_until > needed, timeout)

    def _wait_for(self, condition, timeout: float) -> bool:
        self.ensure_running()
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def stop(self) -> None:
        self.stopping.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.interval + 5)
        self.cache.forget()

    def forked(self) -> None:
        """In a forked child: the parent's thread did not come along."""
        self.thread = None
        self.listening = False
        self.pending.clear()
        self.lock = threading.Lock()
        self.tag = f"{os.getpid()}.{id(self):x}"

    # -- the thread --

    def connect(self):
        """A connection of its own (not the pool's), as the engine's dialect makes them.

        TCP keepalives and a send timeout end it when the network drops it silently;
        freshness (the markers) already stops its cache from being used long before.
        """
        dialect = self.engine.dialect
        cargs, cparams = dialect.create_connect_args(self.engine.url)
        cparams.update(
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            tcp_user_timeout=int(max(2.0, 4 * self.max_staleness) * 1000),
            application_name="hyperapi change listener",
        )
        connection = dialect.connect(*cargs, **cparams)
        connection.autocommit = True
        return connection

    def run(self) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            connection = None
            try:
                connection = self.connect()
                missing = missing_triggers(connection)
                if missing:
                    raise RuntimeError(
                        "the change triggers are missing on "
                        + ", ".join(missing)
                        + " (run the migrations: alembic upgrade head)"
                    )
                connection.execute(f"LISTEN {CHANNEL}")
                self.backend_pid = connection.info.backend_pid
                self.listening = True
                delay = 0.1
                self.serve(connection)
            except Exception as exc:  # any failure: forget everything, reconnect
                now = time.monotonic()
                if not self.stopping.is_set() and now >= self.next_warning:
                    self.next_warning = now + 60
                    log.warning(
                        "row cache: no change listener (%s: %s); reads ask the database "
                        "until it is back",
                        type(exc).__name__,
                        exc,
                    )
            finally:
                self.listening = False
                self.cache.forget()
                for _, event in list(self.pending.values()):
                    if event is not None:
                        event.set()  # the writer's wait ends; everything is forgotten anyway
                self.pending.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.close()
            self.stopping.wait(delay)
            delay = min(delay * 2, 5.0)

    def serve(self, connection) -> None:
        clock = self.cache.clock
        next_beat = 0.0
        while not self.stopping.is_set():
            now = clock()
            if now >= next_beat:
                name = f"{self.tag}:{next(self.counter)}"
                self.pending[name] = (now, None)
                connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, MARKER + name))
                next_beat = now + self.interval
                self.expire_markers(now)
            for notify in connection.notifies(timeout=max(0.0, next_beat - clock())):
                self.apply(notify.payload)

    def apply(self, payload: str) -> None:
        if payload.startswith(MARKER):
            found = self.pending.pop(payload[len(MARKER) :], None)
            if found is not None:
                sent_at, event = found
                if event is None:
                    self.cache.confirm(sent_at, self.max_staleness)
                else:
                    event.set()
            return
        self.cache.changed(payload)

    def expire_markers(self, now: float) -> None:
        """Markers that never came back: a connection that does not deliver is not used."""
        pending = list(self.pending.values())
        if any(event is None and now - sent > 2 * self.max_staleness for sent, event in pending):
            raise TimeoutError("notifications are not coming back")


def missing_triggers(connection) -> list[str]:
    """The tables of NOTIFYING_TABLES that lack either change trigger (rows, TRUNCATE)."""
    rows = connection.execute(
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname IN ('hyperapi_notify_change', 'hyperapi_notify_truncate') "
        "AND c.relname = ANY(%s) AND pg_table_is_visible(c.oid) "
        "GROUP BY c.relname HAVING count(DISTINCT t.tgname) = 2",
        (list(NOTIFYING_TABLES),),
    ).fetchall()
    present = {row[0] for row in rows}
    return sorted(set(NOTIFYING_TABLES) - present)
