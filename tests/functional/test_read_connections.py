"""Each server thread keeps one read connection between requests (models.ReadConnections).

A read takes no connection from the pool once its thread has one; threads never share one;
a connection goes back when its thread ends and at dispose; one that is unusable is
replaced. A connection killed by the database is covered by test_dead_connections.
"""

from __future__ import annotations

import gc
import threading

import pytest
import sqlalchemy as sa
from webtest import TestApp

from tests.functional.test_read_path import bearer, engine_events


@pytest.fixture(scope="module")
def app(app_factory):
    """Without the row cache: these tests watch what reads do with the database, and a
    read answered from memory does nothing (tests/functional/test_row_cache.py)."""
    return app_factory(**{"hyperapi.row_cache.enabled": "false"})


def read_connection_of(app, testapp, path, headers):
    """The DBAPI connection that served a read of ``path`` (seen executing its statement)."""
    seen = []
    here = threading.get_ident()

    def record(connection, *_args):
        if threading.get_ident() == here:  # another thread's reads are not this one's
            seen.append(connection.connection.dbapi_connection)

    engine = app.registry.database.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        testapp.get(path, headers=headers)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(set(map(id, seen))) == 1, seen
    return seen[0]


def in_thread(function):
    """``function()``'s result, computed on a new thread that has ended when this returns."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function()))
    thread.start()
    thread.join()
    return result[0]


def test_reads_on_one_thread_take_no_connection_from_the_pool_after_the_first(app, testapp, alice):
    headers = bearer(testapp, alice)
    path = f"/api/v1/users/{alice['id']}"
    testapp.get(path, headers=headers)
    with engine_events(app, "checkout", "checkin") as seen:
        etag = testapp.get(path, headers=headers).headers["ETag"]
        testapp.get(path, headers={**headers, "If-None-Match": etag}, status=304)
        testapp.get("/api/v1/users", headers=headers)
    assert seen == []
    # A write takes its own connection, in its own transaction, and the next read sees it.
    with engine_events(app, "checkout") as seen:
        testapp.patch_json(path, {"about_me": "kept"}, headers=headers)
    assert [name for name, _ in seen] == ["checkout"]
    assert testapp.get(path, headers={**headers, "If-None-Match": etag}).json["about_me"] == "kept"


def test_threads_never_share_a_read_connection(app, testapp, alice):
    headers = bearer(testapp, alice)
    path = f"/api/v1/users/{alice['id']}"
    mine = read_connection_of(app, testapp, path, headers)
    assert read_connection_of(app, testapp, path, headers) is mine
    # Two threads reading at the same time, each twice.
    barrier = threading.Barrier(2)
    found: dict[str, list] = {"a": [], "b": []}

    def reader(name):
        for _ in range(2):
            barrier.wait()
            found[name].append(read_connection_of(app, testapp, path, headers))

    threads = [threading.Thread(target=reader, args=(name,)) for name in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = found["a"], found["b"]
    assert a[0] is a[1] and b[0] is b[1]
    assert len({id(a[0]), id(b[0]), id(mine)}) == 3


def test_a_thread_that_ends_gives_its_read_connection_back(app, testapp, alice):
    headers = bearer(testapp, alice)
    pool = app.registry.database.engine.pool
    testapp.get(f"/api/v1/users/{alice['id']}", headers=headers)  # this thread's, kept
    before = pool.checkedout()
    in_thread(lambda: testapp.get(f"/api/v1/users/{alice['id']}", headers=headers))
    gc.collect()
    assert pool.checkedout() == before


def test_dispose_gives_back_every_thread_s_read_connection(app_factory, alice):
    app = app_factory()
    client = TestApp(app, extra_environ={"HTTP_HOST": "api.example.com"})
    path = f"/api/v1/users/{alice['id']}"
    reads = app.registry.database.reads
    client.get(path, headers=alice["auth"])
    mine = reads.get()
    # A thread that is still alive, and keeps its connection, when the app is disposed.
    taken, disposed = threading.Event(), threading.Event()
    theirs = []

    def reader():
        client.get(path, headers=alice["auth"])
        theirs.append(reads.get())
        taken.set()
        disposed.wait(10)
        client.get(path, headers=alice["auth"])  # takes a new one
        theirs.append(reads.get())
        theirs.append(theirs[1].closed)

    thread = threading.Thread(target=reader)
    thread.start()
    assert taken.wait(10)
    app.registry.database.dispose()
    assert mine.closed and theirs[0].closed
    disposed.set()
    thread.join()
    new, was_closed = theirs[1:]
    assert new is not theirs[0] and not was_closed
    assert new.closed  # given back when its thread ended
    assert client.get(path, headers=alice["auth"]).json["id"] == alice["id"]
    assert reads.get() is not mine


def test_a_read_connection_is_left_clean_for_the_next_request(app):
    reads = app.registry.database.reads
    connection = reads.get()
    connection.execute(sa.text("SELECT 1")).scalar()  # SQLAlchemy begins (sends no BEGIN)
    assert connection.in_transaction()
    assert reads.get() is connection and not connection.in_transaction()


@pytest.mark.parametrize("spoil", ["invalidate", "close"])
def test_an_unusable_read_connection_is_replaced(app, testapp, alice, spoil):
    reads = app.registry.database.reads
    connection = reads.get()
    getattr(connection, spoil)()
    testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    replaced = reads.get()
    assert replaced is not connection and not (replaced.closed or replaced.invalidated)
