"""The database: engine, sessions bound to the request's transaction, and the models.

``includeme`` builds the engines once and keeps the session factory on the registry;
requests reach their session through the reified ``request.dbsession`` (and, for Core
statements, ``request.dbconnection``). pyramid_tm owns the transaction of every write:
request code never commits.

Reads (GET, HEAD, OPTIONS) stay out of pyramid_tm (its ``tm.activate_hook``): they read
through their thread's read connection (``request.dbconnection``, autocommit, see
:class:`Database` and :class:`ReadConnections`), and should one need the ORM, their session
has a connection and a transaction of its own that is never committed, without joining
zope.sqlalchemy. Measured with bench/hotpath.py, the transaction manager's begin/commit and
``zope.sqlalchemy.register`` (seven event listeners per session) were about a fifth of a
Bearer item GET, for a transaction that never had anything to commit.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

import zope.sqlalchemy
from pyramid_retry import mark_error_retryable
from sqlalchemy import engine_from_config, event, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from zope.sqlalchemy.datamanager import STATUS_ACTIVE, STATUS_CHANGED

from ..settings import ConfigurationError
from .changes import CHANNEL, ChangeListener, RowCache
from .classroom import Class, Registration, Student
from .collections import COLLECTIONS, CollectionState
from .meta import Base, metadata
from .posts import Post
from .users import Follow, RevokedToken, User

__all__ = [
    "COLLECTIONS",
    "Base",
    "Class",
    "CollectionState",
    "Follow",
    "Post",
    "Registration",
    "RevokedToken",
    "Student",
    "User",
    "commit_in_doubt",
    "metadata",
]

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, begin: str) -> None:
    """Make a SQLite file safe for a threaded server.

    WAL lets readers proceed while one writer writes; the busy timeout makes a second
    writer wait instead of failing at once; foreign keys are off in SQLite unless asked
    for. pysqlite's own transaction handling is replaced by an explicit BEGIN (the
    SQLAlchemy recipe) so that write requests can say BEGIN IMMEDIATE: they take the write
    lock before reading, so a compare-and-swap reads the version it will write against.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        if not connection.get_execution_options().get(AUTOCOMMIT_READS):
            connection.exec_driver_sql(begin)


#: An execution option of SQLite's read connections: no explicit BEGIN (see Database).
AUTOCOMMIT_READS = "hyperapi_autocommit_reads"

#: Marks a DBAPI connection whose COMMIT has been sent and not yet answered.
COMMITTING = "hyperapi.committing"


def _track_commits(engine: Engine) -> None:
    """Tell an error raised by COMMIT itself from every other database error.

    A connection lost before COMMIT leaves nothing stored: the server rolls the transaction
    back. One lost while COMMIT is in flight leaves the outcome unknown, since the server
    may have committed and only its answer was lost; such an error is tagged so that
    :func:`commit_in_doubt` can say so (hyperapi.errors tells the client).
    """

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.info.pop(COMMITTING, None)

    @event.listens_for(engine, "commit")
    def on_commit(connection):
        connection.info[COMMITTING] = True

    @event.listens_for(engine, "handle_error")
    def on_error(context):
        connection = context.connection
        if connection is None or context.sqlalchemy_exception is None:
            return
        if connection.info.pop(COMMITTING, False):
            context.sqlalchemy_exception.hyperapi_commit_in_doubt = True
        elif context.is_disconnect and not context.is_pre_ping:
            # A pooled connection turned out dead (the database restarted, a proxy or
            # firewall dropped it) before any COMMIT was sent, so nothing was stored.
            # SQLAlchemy has invalidated the pool (every connection as old as this one is
            # replaced on checkout): pyramid_retry replays the request on a new connection,
            # and the client sees a 503 only if the database is still away. This is what
            # lets ``sqlalchemy.pool_pre_ping`` be off (see production.ini).
            mark_error_retryable(context.sqlalchemy_exception)


def commit_in_doubt(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a COMMIT whose outcome nobody can know."""
    return getattr(exc, "hyperapi_commit_in_doubt", False)


def get_engine(settings: dict[str, Any], *, writer: bool = False) -> Engine:
    """An engine from ``sqlalchemy.*`` settings.

    For SQLite the writer engine begins its transactions with ``BEGIN IMMEDIATE``; other
    databases use one engine for reads and writes.
    """
    url = settings["sqlalchemy.url"]
    options: dict[str, Any] = {"sqlalchemy.url": url}
    if url.startswith("sqlite"):
        options["sqlalchemy.connect_args"] = {"check_same_thread": False}
    else:
        options["sqlalchemy.pool_size"] = settings["sqlalchemy.pool_size"]
        options["sqlalchemy.max_overflow"] = settings["sqlalchemy.max_overflow"]
        options["sqlalchemy.pool_pre_ping"] = settings["sqlalchemy.pool_pre_ping"]
        # libpq waits forever for an unreachable host (no RST, no answer): bound it, so that
        # requests fail with a 503 instead of holding every worker thread.
        options["sqlalchemy.connect_args"] = {
            "connect_timeout": settings["sqlalchemy.connect_timeout"]
        }
    engine = engine_from_config(options, prefix="sqlalchemy.")
    _track_commits(engine)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(
            engine,
            settings["sqlalchemy.sqlite_busy_timeout"],
            "BEGIN IMMEDIATE" if writer else "BEGIN",
        )
    return engine


class _Kept:
    """One thread's read connection; it goes back to the pool when the thread ends."""

    __slots__ = ("__weakref__", "close", "connection")

    def __init__(self, connection: Connection):
        self.connection = connection
        # Runs once: at dispose, on replacement, or when the thread's locals are dropped.
        self.close = weakref.finalize(self, _close_quietly, connection)


def _close_quietly(connection: Connection) -> None:
    # Closing a connection that died gives an error that changes nothing: it is discarded.
    with contextlib.suppress(DBAPIError):
        connection.close()


class ReadConnections:
    """Each thread's read connection, kept from one read request to the next.

    Taking a connection from the pool and giving it back cost a read about 28 us of the
    130 us that a 304 took in process (bench/hotpath.py, SQLite): the ``Connection``
    object, the checkout, the reset and the checkin, and the request's finished callback
    that returned it. A read needs nothing of that: its connection is in autocommit (each
    statement its own snapshot, see :class:`Database`), so it carries no transaction,
    lock or snapshot from one request to the next. So each server thread keeps one, as
    Django's persistent connections do; a thread serves one request at a time, so no two
    requests ever share it.

    - A connection found dead (the database restarted) is invalidated by SQLAlchemy, the
      request is replayed by pyramid_retry (hyperapi.models), and the replay finds the
      connection invalidated and takes a new one; nothing else asks the pool to ping.
    - SQLAlchemy bookkeeping left by a read (an autobegun transaction, which sent no BEGIN)
      is rolled back when the thread's next read takes the connection.
    - It goes back to the pool when its thread ends and at :meth:`Database.dispose`.
    - Capacity: a thread holds its read connection and, while it serves a write, the
      write's: the pool must allow twice the threads of a process (production.ini's
      ``pool_size`` plus ``max_overflow``).
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.local = threading.local()
        #: Every thread's, for close_all.
        self.all: weakref.WeakSet[_Kept] = weakref.WeakSet()
        self.lock = threading.Lock()

    def get(self) -> Connection:
        """This thread's read connection, new if it has none or the one it had is unusable."""
        kept = getattr(self.local, "kept", None)
        if kept is not None:
            connection = kept.connection
            if not (connection.closed or connection.invalidated):
                if connection.in_transaction():
                    connection.rollback()
                return connection
            kept.close()
        kept = self.local.kept = _Kept(self.engine.connect())
        with self.lock:
            self.all.add(kept)
        return kept.connection

    def close_all(self) -> None:
        """Give every thread's connection back (each thread takes a new one next time)."""
        with self.lock:
            kept = list(self.all)
        for each in kept:
            each.close()


class Database:
    """The engines and session factories of one application, kept on the registry."""

    def __init__(self, settings: dict[str, Any]):
        self.engine = get_engine(settings)
        if self.engine.dialect.name == "sqlite":
            self.write_engine = get_engine(settings, writer=True)
        else:
            self.write_engine = self.engine
        self.read_sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(bind=self.write_engine, expire_on_commit=False)
        # What a read request's connection comes from. On PostgreSQL, autocommit: at its
        # default READ COMMITTED level every statement takes its own snapshot inside a
        # transaction as well as outside one, so a read's BEGIN and ROLLBACK bought nothing
        # but two round trips (psycopg sets autocommit on the client, sending no SQL). SQLite
        # reads the same way: without the explicit BEGIN (pysqlite's own transaction
        # handling is off, see _configure_sqlite) each statement is its own transaction
        # with its own snapshot, as on PostgreSQL. That BEGIN was one more statement
        # through SQLAlchemy's execute path per read, a tenth of a 304 in bench/hotpath.py.
        # (SQLAlchemy's isolation_level="AUTOCOMMIT" is not used on SQLite: resetting it on
        # checkin turns pysqlite's implicit transactions back on.)
        if self.engine.dialect.name == "postgresql":
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        else:
            self.read_engine = self.engine.execution_options(**{AUTOCOMMIT_READS: True})
        self.reads = ReadConnections(self.read_engine)
        #: Rows that reads may take from memory (hyperapi.models.changes); None: none.
        self.rows: RowCache | None = None
        self.listener: ChangeListener | None = None
        if settings.get("hyperapi.row_cache.enabled"):
            if self.engine.dialect.name != "postgresql":
                raise ConfigurationError(
                    "hyperapi.row_cache.enabled needs PostgreSQL (its LISTEN/NOTIFY)"
                )
            self.rows = RowCache(settings["hyperapi.row_cache.max_entries"])
            self.listener = ChangeListener(
                self.engine, self.rows, settings["hyperapi.row_cache.max_staleness"]
            )
            _see_own_writes(self.write_sessions, self.listener)

    def session(self, transaction_manager, *, write: bool) -> Session:
        """A session joined to ``transaction_manager``'s transaction."""
        factory = self.write_sessions if write else self.read_sessions
        session = factory()
        # zope.sqlalchemy commits only sessions it saw change, and it does not see Core
        # statements on tables (collection bumps, counters): a write session is taken as
        # changed from the start, so those commit too. A failed request still rolls back
        # (pyramid_tm's commit veto). Reads use no managed session at all (dbsession below).
        zope.sqlalchemy.register(
            session,
            transaction_manager=transaction_manager,
            initial_state=STATUS_CHANGED if write else STATUS_ACTIVE,
        )
        return session

    def dispose(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.reads.close_all()
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


#: Session.info keys: the write transaction's connection, and the marker it sent.
_CONNECTION = "hyperapi.connection"
_MARKER = "hyperapi.marker"


def _see_own_writes(sessions: sessionmaker, listener: ChangeListener) -> None:
    """Make a process see its own writes at once, though rows are remembered.

    A write transaction that used the database sends a marker through the change channel
    just before COMMIT; after it, the request waits until the listener has received the
    marker, and with it (notifications come in commit order) the changes of the
    transaction: the next request of the same client finds no stale row in this process.
    """

    @event.listens_for(sessions, "after_begin")
    def remember_connection(session, _transaction, connection):
        session.info[_CONNECTION] = connection

    @event.listens_for(sessions, "before_commit")
    def send_marker(session):
        connection = session.info.pop(_CONNECTION, None)
        marker = listener.marker() if connection is not None else None
        if marker is not None:
            session.info[_MARKER] = marker
            connection.execute(select(func.pg_notify(CHANNEL, marker[0])))

    @event.listens_for(sessions, "after_commit")
    def wait_for_marker(session):
        marker = session.info.pop(_MARKER, None)
        if marker is not None:
            listener.wait(*marker)

    @event.listens_for(sessions, "after_rollback")
    def drop_marker(session):
        session.info.pop(_CONNECTION, None)
        marker = session.info.pop(_MARKER, None)
        if marker is not None:
            listener.discard(marker[0])


def in_transaction(request) -> bool:
    """pyramid_tm's ``activate_hook``: only unsafe methods run in a managed transaction."""
    return request.method not in SAFE_METHODS


def dbconnection(request) -> Connection:
    """The request's connection, for Core statements.

    A read's is its thread's read connection (each statement commits by itself, see
    Database and ReadConnections); a write's is its session's, inside pyramid_tm's
    transaction.
    """
    if request.method not in SAFE_METHODS:
        return request.dbsession.connection()
    return request.registry.database.reads.get()


def dbsession(request) -> Session:
    """The request's session; unsafe methods get one that begins with the write lock."""
    database: Database = request.registry.database
    if request.method in SAFE_METHODS:
        # A connection of its own, in a transaction that is never committed: on PostgreSQL
        # the read connection commits each statement (see Database), and whatever a read's
        # session writes must not be kept. Read paths use request.dbconnection.
        session = database.read_sessions()
        request.add_finished_callback(_close_read_session)
        return session
    return database.session(request.tm, write=True)


def _close_read_session(request) -> None:
    with contextlib.suppress(DBAPIError):
        request.__dict__["dbsession"].close()  # rolls back whatever the read did


def includeme(config) -> None:
    settings = config.get_settings()
    # pyramid_tm: one transaction per request, rolled back on any error response.
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    # Reads need no transaction manager (see the module docstring).
    settings["tm.activate_hook"] = "hyperapi.models.in_transaction"
    config.include("pyramid_tm")
    # pyramid_retry: replay a request that lost a serialization or lock race.
    config.include("pyramid_retry")
    config.registry.database = Database(settings)
    config.add_request_method(dbsession, "dbsession", reify=True)
    config.add_request_method(dbconnection, "dbconnection", reify=True)
