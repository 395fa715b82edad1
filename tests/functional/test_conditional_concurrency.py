"""Compare-and-swap under contention: concurrent writers holding the same ETag.

Real threads on real connections (SQLite serialises writers with BEGIN IMMEDIATE;
PostgreSQL runs them at once at READ COMMITTED, where the losers' versioned UPDATEs match
no row and are replayed into 412s).
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
from webtest import TestApp

WRITERS = 8


def client(app) -> TestApp:
    return TestApp(app, extra_environ={"HTTP_HOST": "api.example.com"})


def row(app, post_id: int):
    with app.registry.database.engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT body, version FROM posts WHERE id = :id"), {"id": post_id}
        ).one()


def run_together(count: int, work) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_of_writers_with_the_same_if_match_exactly_one_wins(app, testapp, alice):
    post = testapp.post_json("/api/v1/posts", {"body": "start"}, headers=alice["auth"])
    path = f"/api/v1/posts/{post.json['id']}"
    etag = post.headers["ETag"]

    def put(i):
        response = client(app).put_json(
            path,
            {"body": f"writer {i}"},
            headers={**alice["auth"], "If-Match": etag},
            expect_errors=True,
        )
        return response.status_int, response.headers.get("ETag")

    results = run_together(WRITERS, put)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [412] * (WRITERS - 1), statuses
    winner = next(i for i, (status, _) in enumerate(results) if status == 200)
    body, version = row(app, post.json["id"])
    assert body == f"writer {winner}"
    assert version == 2  # exactly one UPDATE happened
    # Every loser was told the winner's ETag.
    assert {e for s, e in results if s == 412} == {results[winner][1]}


def test_of_deletes_with_the_same_if_match_exactly_one_wins(app, testapp, alice):
    post = testapp.post_json("/api/v1/posts", {"body": "start"}, headers=alice["auth"])
    path = f"/api/v1/posts/{post.json['id']}"
    etag = post.headers["ETag"]
    # Half the writers change it, half delete it: only one of all of them may succeed.

    def write(i):
        headers = {**alice["auth"], "If-Match": etag}
        if i % 2:
            return client(app).delete(path, headers=headers, expect_errors=True).status_int
        return (
            client(app)
            .patch_json(path, {"body": f"w{i}"}, headers=headers, expect_errors=True)
            .status_int
        )

    statuses = run_together(WRITERS, write)
    successes = [s for s in statuses if s in (200, 204)]
    assert len(successes) == 1, statuses
    # A loser of a race with a delete finds nothing (404) or a changed post (412).
    assert set(statuses) - {200, 204} <= {404, 412}, statuses


def test_an_increment_loop_retrying_on_412_loses_no_increment(app, testapp, alice):
    clients, increments = 4, 5
    post = testapp.post_json("/api/v1/posts", {"body": "0"}, headers=alice["auth"])
    path = f"/api/v1/posts/{post.json['id']}"

    def increment(i):
        http = client(app)
        done = conflicts = 0
        while done < increments:
            current = http.get(path, headers=alice["auth"])
            response = http.put_json(
                path,
                {"body": str(int(current.json["body"]) + 1)},
                headers={**alice["auth"], "If-Match": current.headers["ETag"]},
                expect_errors=True,
            )
            assert response.status_int in (200, 412), response
            if response.status_int == 200:
                done += 1
            else:
                conflicts += 1
        return done, conflicts

    results = run_together(clients, increment)

    total = sum(done for done, _ in results)
    body, version = row(app, post.json["id"])
    assert int(body) == total == clients * increments
    assert version == 1 + total
