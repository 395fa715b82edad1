"""The row cache: reads answered from memory, and every change seen in time (PostgreSQL).

Two applications on one database stand for two server processes: each has its own cache
and its own listener (hyperapi.models.changes). What must hold: a read from memory
answers as the database would; the process that writes sees its write at once; another
process sees it within ``max_staleness``; a write never trusts memory; and when the
listener cannot vouch for the cache, reads go to the database.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from webtest import TestApp

from hyperapi import main
from hyperapi.models.changes import missing_triggers
from hyperapi.settings import ConfigurationError
from tests.conftest import TEST_SETTINGS, basic, empty_database, migrate, scratch_database
from tests.functional.test_read_path import engine_events

#: Short, so that the tests that wait for it stay quick.
MAX_STALENESS = 0.4
HOST = {"HTTP_HOST": "api.example.com"}
PASSWORD = "correct horse battery"


def make_app(url: str, **overrides):
    settings = {
        **TEST_SETTINGS,
        "sqlalchemy.url": url,
        "hyperapi.row_cache.enabled": "true",
        "hyperapi.row_cache.max_staleness": str(MAX_STALENESS),
        **overrides,
    }
    return main({}, **settings)


@pytest.fixture
def apps(postgresql_url):
    """Two applications ("processes") sharing the database, both listening."""
    made = [make_app(postgresql_url), make_app(postgresql_url)]
    for app in made:
        assert app.registry.database.listener.ready()
    yield made
    empty_database(made[0].registry.database.write_engine)
    for app in made:
        app.registry.database.dispose()


@pytest.fixture
def one(apps) -> TestApp:
    return TestApp(apps[0], extra_environ=HOST)


@pytest.fixture
def other(apps) -> TestApp:
    return TestApp(apps[1], extra_environ=HOST)


def sign_up(client: TestApp, username: str) -> dict:
    user = client.post_json(
        "/api/v1/users",
        {"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    ).json
    token = client.post("/api/v1/tokens", headers=basic(username, PASSWORD)).json["token"]
    return {"id": user["id"], "basic": basic(username, PASSWORD), "bearer": bearer(token)}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def settle(*apps) -> None:
    """Wait until each app has applied every change committed so far (writes made through
    another app arrive as notifications; one arriving after a read began keeps that read
    from being remembered)."""
    for app in apps:
        assert app.registry.database.listener.caught_up()


def selects(app, client: TestApp, path: str, headers, status: int = 200) -> int:
    """How many SELECTs answering ``path`` sent to the database."""
    with engine_events(app, "before_cursor_execute") as seen:
        client.get(path, headers=headers, status=status)
    return len([sql for _, sql in seen if sql.startswith("SELECT")])


def within_max_staleness(check) -> float:
    """Seconds until ``check()`` holds; fails if a check that began MAX_STALENESS after the
    change (made before this call) still did not see it, which the cache guarantees."""
    start = time.monotonic()
    while True:
        began = time.monotonic()
        if check():
            return began - start
        assert began - start < MAX_STALENESS + 0.05, "not seen within max_staleness"
        time.sleep(0.005)


def test_a_remembered_read_sends_nothing_and_answers_as_the_database_would(apps, one):
    alice, bob = sign_up(one, "alice"), sign_up(one, "bob")
    post = one.post_json("/api/v1/posts", {"body": "hi"}, headers=alice["bearer"])
    for path in (f"/api/v1/users/{bob['id']}", f"/api/v1/users/{alice['id']}", post.location):
        for headers in (alice["bearer"], alice["basic"]):
            first = one.get(path, headers=headers)
            assert selects(apps[0], one, path, headers) == 0
            again = one.get(path, headers=headers)
            assert (again.body, again.headers["ETag"]) == (first.body, first.headers["ETag"])
            conditional = {**headers, "If-None-Match": first.headers["ETag"]}
            assert selects(apps[0], one, path, conditional, status=304) == 0
    # The viewer's own record shows its email; another's does not, from memory too.
    assert "email" in one.get(f"/api/v1/users/{alice['id']}", headers=alice["bearer"]).json
    assert "email" not in one.get(f"/api/v1/users/{bob['id']}", headers=alice["bearer"]).json
    # A missing item is remembered as missing, and answered 404.
    one.get("/api/v1/posts/999", headers=alice["bearer"], status=404)
    assert selects(apps[0], one, "/api/v1/posts/999", alice["bearer"], status=404) == 0


def test_the_writing_process_sees_its_own_write_at_once(apps, one):
    alice = sign_up(one, "alice")
    path = f"/api/v1/users/{alice['id']}"
    etag = one.get(path, headers=alice["bearer"]).headers["ETag"]
    for n in range(20):
        written = one.patch_json(
            path, {"about_me": f"edit {n}"}, headers={**alice["bearer"], "If-Match": etag}
        )
        # The very next read, from the same process: never the old row.
        read = one.get(path, headers={**alice["bearer"], "If-None-Match": etag})
        assert read.status_int == 200 and read.json["about_me"] == f"edit {n}"
        assert read.headers["ETag"] == written.headers["ETag"]
        etag = read.headers["ETag"]


def test_another_process_sees_a_write_within_max_staleness(apps, one, other):
    alice = sign_up(one, "alice")
    path = f"/api/v1/users/{alice['id']}"
    settle(apps[1])
    seen = other.get(path, headers=alice["bearer"])
    assert selects(apps[1], other, path, alice["bearer"]) == 0  # remembered over there
    one.patch_json(path, {"about_me": "changed"}, headers=alice["bearer"])
    conditional = {**alice["bearer"], "If-None-Match": seen.headers["ETag"]}
    within_max_staleness(lambda: other.get(path, headers=conditional).status_int == 200)
    assert other.get(path, headers=alice["bearer"]).json["about_me"] == "changed"


def test_a_revocation_or_password_change_holds_in_every_process_within_max_staleness(
    apps, one, other
):
    alice = sign_up(one, "alice")
    path = f"/api/v1/users/{alice['id']}"
    revoked = alice["bearer"]
    kept = bearer(one.post("/api/v1/tokens", headers=alice["basic"]).json["token"])
    settle(apps[1])
    for headers in (revoked, kept, alice["basic"]):
        other.get(path, headers=headers)  # remembered by the other process
    one.delete("/api/v1/tokens", headers=revoked, status=204)
    # The revoking process refuses it at once; the other within the bound.
    one.get(path, headers=revoked, status=401)
    within_max_staleness(
        lambda: other.get(path, headers=revoked, expect_errors=True).status_int == 401
    )
    other.get(path, headers=kept, status=200)
    # A password change revokes every token and the old password, everywhere.
    one.patch_json(path, {"password": "another good password"}, headers=kept)
    within_max_staleness(
        lambda: other.get(path, headers=kept, expect_errors=True).status_int == 401
    )
    other.get(path, headers=alice["basic"], status=401)
    other.get(path, headers=basic("alice", "another good password"), status=200)


def test_a_write_checks_its_credentials_against_the_database_not_memory(apps, one, postgresql_url):
    alice = sign_up(one, "alice")
    path = f"/api/v1/users/{alice['id']}"
    one.get(path, headers=alice["bearer"])  # remembered
    # Revoke behind the listener's back: no trigger, so no notification ever comes.
    token_id = apps[0].registry.tokens.verify(alice["bearer"]["Authorization"][7:]).token_id
    admin = sa.create_engine(postgresql_url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            connection.execute(
                sa.text(
                    "INSERT INTO revoked_tokens (token_id, expires_at) "
                    "VALUES (:id, now() + interval '1 hour')"
                ),
                {"id": token_id},
            )
    finally:
        admin.dispose()
    # A read trusts memory (this is what notifications are for)...
    one.get(path, headers=alice["bearer"], status=200)
    # ...a write never does: it is refused, and changes nothing.
    one.patch_json(path, {"about_me": "no"}, headers=alice["bearer"], status=401)
    assert one.get(path, headers=alice["basic"]).json["about_me"] == ""


def test_changes_made_outside_the_application_are_seen_too(apps, one, postgresql_url):
    # Triggers see every write: a bulk UPDATE, a cascade, a TRUNCATE, all from psql.
    alice, bob = sign_up(one, "alice"), sign_up(one, "bob")
    post = one.post_json("/api/v1/posts", {"body": "hi"}, headers=alice["bearer"]).location
    user = f"/api/v1/users/{alice['id']}"
    for path in (user, post):
        one.get(path, headers=bob["bearer"])
    admin = sa.create_engine(postgresql_url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql("UPDATE users SET about_me = 'bulk', version = version + 1")
        within_max_staleness(
            lambda: one.get(user, headers=bob["bearer"]).json["about_me"] == "bulk"
        )
        with admin.begin() as connection:  # the cascade deletes alice's post
            connection.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": alice["id"]})
        within_max_staleness(
            lambda: one.get(post, headers=bob["bearer"], expect_errors=True).status_int == 404
        )
        one.get(f"/api/v1/users/{bob['id']}", headers=bob["bearer"], status=200)
        with admin.begin() as connection:
            connection.exec_driver_sql("TRUNCATE users CASCADE")
        within_max_staleness(
            lambda: one.get(user, headers=bob["bearer"], expect_errors=True).status_int == 401
        )
    finally:
        admin.dispose()


def test_a_lost_listener_forgets_everything_and_reads_ask_the_database_until_it_is_back(
    apps, one, postgresql_url
):
    alice = sign_up(one, "alice")
    path = f"/api/v1/users/{alice['id']}"
    one.get(path, headers=alice["bearer"])
    database = apps[0].registry.database
    assert selects(apps[0], one, path, alice["bearer"]) == 0
    admin = sa.create_engine(postgresql_url)
    try:
        with admin.connect() as connection:  # as a restart or a proxy would
            killed = connection.execute(
                sa.text("SELECT pg_terminate_backend(:pid)"),
                {"pid": database.listener.backend_pid},
            ).scalar()
        assert killed
        deadline = time.monotonic() + 5
        while database.listener.listening and len(database.rows):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        admin.dispose()
    assert len(database.rows) == 0
    # Answers stay right meanwhile, and memory is used again once the listener is back.
    assert database.listener.ready(timeout=10)
    one.get(path, headers=alice["bearer"])
    assert selects(apps[0], one, path, alice["bearer"]) == 0


def test_when_markers_stop_coming_back_reads_ask_the_database(apps, one, monkeypatch):
    alice = sign_up(one, "alice")
    path = f"/api/v1/users/{alice['id']}"
    one.get(path, headers=alice["bearer"])
    assert selects(apps[0], one, path, alice["bearer"]) == 0
    listener = apps[0].registry.database.listener
    stalled = threading.Event()
    original = listener.apply

    def stall(payload):
        stalled.set()
        if not payload.startswith("sync:"):
            original(payload)  # changes still apply; only the proof of freshness stops

    monkeypatch.setattr(listener, "apply", stall)
    stalled.wait(2)
    time.sleep(MAX_STALENESS + 0.05)
    assert selects(apps[0], one, path, alice["bearer"]) == 1
    monkeypatch.setattr(listener, "apply", original)
    assert listener.ready()
    one.get(path, headers=alice["bearer"])
    assert selects(apps[0], one, path, alice["bearer"]) == 0


def test_a_write_whose_changes_do_not_come_back_in_time_forgets_everything(
    apps, one, monkeypatch, caplog
):
    alice = sign_up(one, "alice")
    path = f"/api/v1/users/{alice['id']}"
    one.get(path, headers=alice["bearer"])
    database = apps[0].registry.database
    assert len(database.rows)
    listener = database.listener
    original = listener.apply
    dropped = []

    def drop_write_markers(payload):
        if payload.startswith("sync:") and ":w" in payload:
            dropped.append(payload)  # as if this process never heard of its own write
        else:
            original(payload)

    monkeypatch.setattr(listener, "apply", drop_write_markers)
    start = time.monotonic()
    written = one.patch_json(path, {"about_me": "late"}, headers=alice["bearer"])
    # The write waited for max_staleness, then forgot everything rather than risk a stale row.
    assert dropped and time.monotonic() - start >= MAX_STALENESS
    assert "did not come back in time; forgetting" in caplog.text
    assert not listener.pending or all(event is None for _, event in listener.pending.values())
    read = one.get(path, headers={**alice["bearer"], "If-None-Match": written.headers["ETag"]})
    assert read.status_int == 304


def test_the_listener_refuses_a_database_without_the_change_triggers(postgresql_url):
    with scratch_database("hyperapi_rowcache") as url:
        migrate(url, "0001")
        app = make_app(url)
        try:
            assert not app.registry.database.listener.ready(timeout=1)
            admin = sa.create_engine(url)
            try:
                with admin.connect() as connection:
                    raw = connection.connection.driver_connection
                    assert missing_triggers(raw) == sorted(
                        [
                            "classes",
                            "posts",
                            "registrations",
                            "revoked_tokens",
                            "students",
                            "users",
                        ]
                    )
                # Both triggers count: without the TRUNCATE one, a truncate would go unseen.
                migrate(url)
                with admin.begin() as connection:
                    connection.exec_driver_sql("DROP TRIGGER hyperapi_notify_truncate ON posts")
                with admin.connect() as connection:
                    assert missing_triggers(connection.connection.driver_connection) == ["posts"]
            finally:
                admin.dispose()
        finally:
            app.registry.database.dispose()


def test_the_row_cache_needs_postgresql(sqlite_url):
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        make_app(sqlite_url)
