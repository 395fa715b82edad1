"""FastSelect (hyperapi.models.reads): the driver's cursor, and nothing else changes.

Pinned on both backends, on a read request's connection (autocommit) and inside a write's
transaction: the hot statements (load_row's, the validators', the identity's, the Bearer
scheme's user-and-revocation) give exactly the row ``Connection.execute`` gives (same
values, same types, aware UTC datetimes, attributes named like the columns) or None; a
statement the database refuses raises SQLAlchemy's ``DBAPIError`` for that statement's own
error (not "current transaction is aborted"); a dead connection is invalidated and marked
retryable, never taken for a commit in doubt; and while anything listens to the cursor
events, it sees every statement.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from pyramid_retry import IRetryableError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from hyperapi.models import COMMITTING, RevokedToken, User, commit_in_doubt
from hyperapi.models.meta import utcnow
from hyperapi.models.reads import FastSelect
from hyperapi.resources.validators import validators_by_id
from hyperapi.resources.views import row_by_id
from hyperapi.security.identity import USER_BY_ID, USER_BY_NAME, USER_COLUMNS
from hyperapi.security.tokens import DatabaseRevocations

USERS = User.__table__
# Given at UTC-5 with microseconds: read back as the same instant, in UTC.
LAST_SEEN = dt.datetime(
    2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5))
)
NOBODY = 999_999

# The Bearer scheme's statement when revocations live in the database (one round trip).
USER_AND_REVOCATION = FastSelect(
    sa.select(*USER_COLUMNS, DatabaseRevocations.revoked_clause().label("revoked")).where(
        User.id == sa.bindparam("user_id")
    )
)

#: (statement, its parameters for a user id and name): each is asked of alice, root, nobody.
STATEMENTS = {
    "load_row": (row_by_id(USERS), lambda id, name: {"id": id}),
    "validators": (validators_by_id(USERS), lambda id, name: {"id": id}),
    "user_by_id": (USER_BY_ID, lambda id, name: {"user_id": id}),
    "user_by_name": (USER_BY_NAME, lambda id, name: {"username": name}),
    "bearer": (
        USER_AND_REVOCATION,
        lambda id, name: {"user_id": id, "token_id": f"{name}-token", "now": utcnow()},
    ),
}


@pytest.fixture
def people(app, accounts):
    """alice: never seen, her token's revocation expired; root: admin, seen, token revoked."""
    alice, root = accounts.create("alice"), accounts.create("root", admin=True)
    now = utcnow()
    with app.registry.database.write_engine.begin() as connection:
        connection.execute(
            USERS.update().where(USERS.c.id == root["id"]).values(last_seen=LAST_SEEN)
        )
        connection.execute(
            RevokedToken.__table__.insert(),
            [
                {"token_id": "alice-token", "expires_at": now - dt.timedelta(hours=1)},
                {"token_id": "root-token", "expires_at": now + dt.timedelta(hours=1)},
            ],
        )
    return SimpleNamespace(alice=alice["id"], root=root["id"])


@pytest.fixture(params=["read", "write"])
def connection(request, app, people):
    """A read request's connection (autocommit), or one inside a write's transaction."""
    database = app.registry.database
    if request.param == "read":
        connection = database.read_engine.connect()
    else:
        connection = database.write_engine.connect()
        connection.begin()
    yield connection
    connection.close()  # rolls back


@contextmanager
def fast_path_only():
    """Fail if FastSelect hands the statement to ``Connection.execute``."""

    def refuse(*args, **kwargs):
        raise AssertionError("FastSelect fell back to Connection.execute")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Connection, "execute", refuse)
        yield


def assert_same_row(fast, core) -> None:
    if core is None:
        assert fast is None
        return
    assert fast._fields == tuple(core._fields)
    assert tuple(fast) == tuple(core)
    assert [type(value) for value in fast] == [type(value) for value in core]
    for value in fast:
        if isinstance(value, dt.datetime):
            assert value.utcoffset() == dt.timedelta(0), value


@pytest.mark.parametrize("name", STATEMENTS)
def test_the_row_is_the_one_execute_gives(connection, people, name):
    select, params = STATEMENTS[name]
    for user_id, username in [(people.alice, "alice"), (people.root, "root"), (NOBODY, "nobody")]:
        values = params(user_id, username)
        with fast_path_only():
            fast = select.first(connection, values)
        core = connection.execute(select.statement, values).first()
        assert (fast is None) is (user_id == NOBODY)
        assert_same_row(fast, core)


def test_columns_are_attributes_as_on_a_core_row(connection, people):
    with fast_path_only():
        root = row_by_id(USERS).first(connection, {"id": people.root})
        alice = row_by_id(USERS).first(connection, {"id": people.alice})
        validators = validators_by_id(USERS).first(connection, {"id": people.root})
        bearer, params = STATEMENTS["bearer"]
        revoked = bearer.first(connection, params(people.root, "root"))
        expired = bearer.first(connection, params(people.alice, "alice"))
    core = connection.execute(sa.select(USERS).where(USERS.c.id == people.root)).one()
    for column in USERS.c:
        assert getattr(root, column.key) == getattr(core, column.key), column.key
    assert (root.version, root.updated_at) == (validators.version, validators.updated_at)
    assert root.updated_at.tzinfo is dt.UTC
    assert root.last_seen == LAST_SEEN and root.last_seen.tzinfo is dt.UTC
    assert alice.last_seen is None
    assert (root.is_admin, alice.is_admin) == (True, False)
    assert (revoked.revoked, expired.revoked) == (True, False)
    assert revoked.token_generation == 0 and revoked.username == "root"


# An expression each backend refuses when it runs, its parameters, what the driver says.
FAILING = {
    "sqlite": [
        (sa.literal_column("abs(-9223372036854775807 - 1)"), {}, "integer overflow"),
        (sa.func.json(sa.bindparam("doc", type_=sa.String)), {"doc": "{"}, "malformed JSON"),
    ],
    "postgresql": [
        (sa.literal_column("1/0"), {}, "division by zero"),
        (sa.cast(sa.bindparam("n", type_=sa.String), sa.Integer), {"n": "x"}, "invalid input"),
    ],
}


def driver_error(backend: str) -> type[Exception]:
    if backend == "sqlite":
        return sqlite3.OperationalError
    import psycopg

    return psycopg.DataError


@pytest.mark.parametrize("case", [0, 1])
def test_a_refused_statement_raises_its_own_error_wrapped_by_sqlalchemy(
    backend, connection, people, case
):
    expression, params, message = FAILING[backend][case]
    with pytest.raises(DBAPIError) as raised:
        FastSelect(sa.select(expression.label("value"))).first(connection, params)
    # The statement's own error, not a re-run's "current transaction is aborted".
    assert isinstance(raised.value.orig, driver_error(backend)), repr(raised.value.orig)
    assert message in str(raised.value.orig)
    assert not raised.value.connection_invalidated
    connection.rollback()
    with fast_path_only():
        assert USER_BY_ID.first(connection, {"user_id": people.alice}).username == "alice"


def lose(app, backend, connection) -> None:
    """Take ``connection``'s database connection away, as a restart or a dropped link would."""
    if backend == "sqlite":
        # SQLite has no server to lose; a closed handle is what pysqlite calls a disconnect.
        connection.connection.dbapi_connection.close()
        return
    pid = connection.connection.dbapi_connection.info.backend_pid
    with app.registry.database.engine.connect() as other:  # waits until it is gone
        terminate = sa.text("SELECT pg_terminate_backend(:pid, 5000)")
        assert other.execute(terminate, {"pid": pid}).scalar() is True


def test_a_dead_connection_is_invalidated_and_retryable(app, backend, connection, people):
    if not connection.in_transaction():
        # What a pooled connection carries from a write's COMMIT until its next BEGIN
        # (hyperapi.models): a read that begins nothing before it fails must not be
        # taken for a commit in doubt.
        connection.info[COMMITTING] = True
    lose(app, backend, connection)
    with pytest.raises(DBAPIError) as raised:
        USER_BY_ID.first(connection, {"user_id": people.alice})
    assert raised.value.connection_invalidated  # SQLAlchemy's disconnect handling ran
    assert IRetryableError.providedBy(raised.value)  # hyperapi's handle_error: replayable
    assert not commit_in_doubt(raised.value)
    assert connection.invalidated
    with app.registry.database.read_engine.connect() as fresh:  # the pool lends a live one
        assert USER_BY_ID.first(fresh, {"user_id": people.alice}).username == "alice"


@pytest.mark.parametrize("event", ["before_cursor_execute", "after_cursor_execute"])
def test_a_cursor_listener_sees_the_statement_and_the_row_is_the_same(
    app, connection, people, event
):
    select, params = row_by_id(USERS), {"id": people.root}
    with fast_path_only():
        unobserved = select.first(connection, params)
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    database = app.registry.database
    engines = {database.engine, database.write_engine}
    for engine in engines:
        sa.event.listen(engine, event, record)
    try:
        observed = select.first(connection, params)
    finally:
        for engine in engines:
            sa.event.remove(engine, event, record)
    assert seen == [select.plan(connection.dialect).sql]
    assert observed == unobserved and observed._fields == unobserved._fields
    with fast_path_only():  # the listener gone, the driver's cursor again
        assert select.first(connection, params) == unobserved
