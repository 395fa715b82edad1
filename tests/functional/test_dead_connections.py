"""Pooled connections that died while idle cost the client nothing, without a pre-ping.

PostgreSQL restarted, or a proxy dropped idle connections: the pool still holds them.
``sqlalchemy.pool_pre_ping`` (off by default: a ``SELECT 1`` per request) is not what
saves the next requests: the first statement on a dead connection fails before any
COMMIT, SQLAlchemy invalidates the pool, and pyramid_retry replays the request on a new
connection (hyperapi.models). PostgreSQL only: SQLite has no connection to lose.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from webtest import TestApp

from hyperapi import main
from tests.conftest import TEST_SETTINGS, basic, empty_database


@pytest.fixture
def app(postgresql_url):
    app = main({}, **{**TEST_SETTINGS, "sqlalchemy.url": postgresql_url})
    engine = app.registry.database.engine
    engine.dispose()  # from here on, every connection of the pool is seen being made
    app.backend_pids = []
    sa.event.listen(
        engine, "connect", lambda dbapi, _record: app.backend_pids.append(dbapi.info.backend_pid)
    )
    yield app
    empty_database(app.registry.database.write_engine)
    app.registry.database.dispose()


def kill_connections(app, admin: sa.Engine) -> int:
    """Terminate the server processes of this app's pooled connections, as a restart would."""
    with admin.connect() as connection:
        killed = connection.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                "pg_stat_activity WHERE pid = ANY(:pids)"
            ),
            {"pids": app.backend_pids},
        ).scalar()
    app.backend_pids.clear()
    return killed


def test_reads_and_writes_after_idle_connections_died_succeed_without_pre_ping(
    app, postgresql_url
):
    assert app.registry.settings["sqlalchemy.pool_pre_ping"] is False
    client = TestApp(app, extra_environ={"HTTP_HOST": "api.example.com"})
    client.post_json(
        "/api/v1/users",
        {"username": "idle", "email": "idle@example.com", "password": "correct horse 42"},
    )
    token = client.post("/api/v1/tokens", headers=basic("idle", "correct horse 42")).json
    bearer = {"Authorization": "Bearer " + token["token"]}
    assert client.get("/api/v1/users", headers=bearer).status_int == 200

    admin = sa.create_engine(postgresql_url)
    try:
        assert kill_connections(app, admin) >= 1
        # Every request below meets a dead pooled connection first; none sees it.
        assert client.get("/api/v1/users", headers=bearer).status_int == 200
        assert kill_connections(app, admin) >= 1
        created = client.post_json(
            "/api/v1/posts", {"body": "after a restart"}, headers=bearer, status=201
        )
        assert client.get(created.location, headers=bearer).json["body"] == "after a restart"
    finally:
        admin.dispose()
