"""Fixtures: settings, databases on every backend, a clean slate per test, WebTest apps.

Every functional test runs once per backend: SQLite with the in-memory stores (always),
and PostgreSQL with Redis for rate limits, token revocations and the response cache (when
both are reachable; required when ``HYPERAPI_REQUIRE_BACKENDS`` is set, as in CI). Each test
session migrates a fresh database with alembic, so the migrations are tested too, and keeps
its Redis keys under a prefix of its own, emptied after each test, so that runs sharing one
Redis never read each other's counters or cached responses.

Isolation is by emptying the tables after each test, not by the cookiecutter's shared
doomed transaction: hyperapi's behaviour *is* its transactions (a failed request must roll
back and leave the database unchanged, two writers must race on real connections), and a
transaction shared by every request of a test would hide exactly that.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from webtest import TestApp

from hyperapi import main
from hyperapi.models import COLLECTIONS, User, metadata
from hyperapi.models.collections import bump
from hyperapi.models.meta import utcnow
from hyperapi.scripts.initializedb import alembic_config
from hyperapi.security.passwords import Passwords

POSTGRESQL_URL = os.environ.get(
    "HYPERAPI_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HYPERAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = os.environ.get("HYPERAPI_REQUIRE_BACKENDS", "").lower() in ("1", "true", "yes")
#: This session's namespace in the shared Redis database.
REDIS_PREFIX = f"hyperapi-test-{uuid.uuid4().hex[:12]}"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "correct horse battery"

# Cheap argon2 parameters: the tests verify hundreds of passwords.
TEST_SETTINGS = {
    "hyperapi.environment": "development",
    "hyperapi.secret": "test-secret-" + "x" * 32,
    "hyperapi.argon2.time_cost": "1",
    "hyperapi.argon2.memory_cost": "8",
    "hyperapi.argon2.parallelism": "1",
    # Limits no test reaches by accident; tests of rate limiting build apps with small ones.
    "hyperapi.ratelimit.default": "1000000/hour",
    "hyperapi.ratelimit.routes": "",
    "hyperapi.ratelimit.authentication_failures": "1000000/hour",
}


def unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (HYPERAPI_REQUIRE_BACKENDS is set: backends are required)")
    pytest.skip(reason)


def migrate(url: str, revision: str = "head") -> None:
    from alembic import command

    config = alembic_config(os.path.join(ROOT, "development.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    migrate(url)
    return url


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """The URL of an empty PostgreSQL database of its own, dropped (sessions and all) after."""
    admin = sa.create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception:
        admin.dispose()
        raise
    try:
        yield sa.engine.make_url(POSTGRESQL_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database("hyperapi_test"))
        except Exception as exc:
            unavailable(
                f"PostgreSQL is not reachable at {POSTGRESQL_URL}: {exc.__class__.__name__}"
            )
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {exc.__class__.__name__}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def database_url(backend, request) -> str:
    return request.getfixturevalue(f"{backend}_url")


def redis_settings(url: str) -> dict[str, str]:
    """Every store that can live in Redis put there, under this session's prefix."""
    return {
        "hyperapi.redis.url": url,
        "hyperapi.auth.revocations": "redis",
        "hyperapi.auth.revocations_key_prefix": f"{REDIS_PREFIX}:revoked:",
        "hyperapi.ratelimit.storage_url": url,
        "hyperapi.ratelimit.key_prefix": REDIS_PREFIX,
        "hyperapi.response_cache.backend": "redis",
        "hyperapi.response_cache.key_prefix": f"{REDIS_PREFIX}:response:",
    }


@pytest.fixture(scope="session")
def redis_client(redis_url) -> Iterator:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    empty_redis(client)
    client.close()


def empty_redis(client) -> None:
    """Delete this session's keys: the tables are emptied, so ids and versions repeat."""
    keys = list(client.scan_iter(match=REDIS_PREFIX + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def settings(backend, database_url, request) -> dict[str, str]:
    settings = {**TEST_SETTINGS, "sqlalchemy.url": database_url}
    if backend == "postgresql":
        settings.update(redis_settings(request.getfixturevalue("redis_url")))
        # As production.ini: reads take rows from memory, kept in step by NOTIFY.
        settings["hyperapi.row_cache.enabled"] = "true"
    return settings


def empty_database(engine: sa.Engine) -> None:
    """Delete every row and reset the collection states, as a fresh migration leaves them."""
    states = metadata.tables["collection_states"]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in metadata.sorted_tables)
            connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
        connection.execute(
            states.insert(),
            [
                {"name": name, "version": 1, "count": 0, "updated_at": utcnow()}
                for name in COLLECTIONS
            ],
        )


@pytest.fixture(scope="session")
def app_factory(settings):
    """Build an application on this backend with extra settings; disposed at the end."""
    apps = []

    def make(**overrides):
        app = main({}, **{**settings, **overrides})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.registry.database.dispose()


@pytest.fixture(scope="session")
def app(app_factory):
    return app_factory()


@pytest.fixture
def clean(app, backend, request) -> Iterator[None]:
    redis = request.getfixturevalue("redis_client") if backend == "postgresql" else None
    yield
    empty_database(app.registry.database.write_engine)
    if redis is not None:
        empty_redis(redis)


@pytest.fixture
def testapp(app, clean) -> TestApp:
    return TestApp(app, extra_environ={"HTTP_HOST": "api.example.com"})


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    raw = f"{username}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class Accounts:
    """Creates users straight in the database and hands out their credentials."""

    def __init__(self, app, testapp):
        self.app = app
        self.testapp = testapp

    def create(self, username: str, *, admin: bool = False, password: str = PASSWORD) -> dict:
        registry = self.app.registry
        hasher = Passwords.from_settings(registry.settings)
        with registry.database.write_sessions() as session, session.begin():
            user = User(
                username=username,
                email=f"{username}@example.com",
                password_hash=hasher.hash(password),
                about_me="",
                is_admin=admin,
            )
            session.add(user)
            session.flush()
            bump(session, "users", +1)
            user_id = user.id
        return {"id": user_id, "username": username, "auth": basic(username, password)}

    def token(self, account: dict) -> dict[str, str]:
        response = self.testapp.post("/api/v1/tokens", headers=account["auth"])
        return {"Authorization": "Bearer " + response.json["token"]}


@pytest.fixture
def accounts(app, testapp) -> Accounts:
    return Accounts(app, testapp)


@pytest.fixture
def alice(accounts) -> dict:
    return accounts.create("alice")


@pytest.fixture
def bob(accounts) -> dict:
    return accounts.create("bob")


@pytest.fixture
def admin(accounts) -> dict:
    return accounts.create("root", admin=True)


def row_counts(app) -> dict[str, int]:
    """How many rows each table holds: to show that a refused request changed nothing."""
    engine = app.registry.database.engine
    with engine.connect() as connection:
        return {
            table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            for table in metadata.sorted_tables
        }


def snapshot(app) -> dict[str, list]:
    """Every row of every table, to show that a refused request changed nothing at all."""
    engine = app.registry.database.engine
    with engine.connect() as connection:
        return {
            table.name: sorted(map(tuple, connection.execute(sa.select(table)).all()), key=repr)
            for table in metadata.sorted_tables
        }


@pytest.fixture
def compared(monkeypatch) -> list[tuple]:
    """Every pair ``hmac.compare_digest`` compares while the test runs (constant-time checks)."""
    pairs: list[tuple] = []
    original = hmac.compare_digest

    def recording(a, b):
        pairs.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return pairs
