"""PostgreSQL serialization failures and deadlocks are replayed by pyramid_retry.

PostgreSQL reports a transaction that lost a race with SQLSTATE class 40
(``serialization_failure``, ``deadlock_detected``); zope.sqlalchemy marks those errors
transient and pyramid_tm + pyramid_retry replay the whole request (``retry.attempts``).
Here the server itself raises the error: the first INSERTs of a request are replaced, on
the wire, by a statement that fails with that SQLSTATE.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event
from webtest import TestApp

from hyperapi import main
from tests.conftest import TEST_SETTINGS, empty_database

HOST = {"HTTP_HOST": "api.example.com"}


def losing(code: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'lost a race' USING ERRCODE = '{code}'; END $$"


@pytest.fixture
def racing(postgresql_url, accounts_app):
    """``racing(code, times)``: the next ``times`` student INSERTs fail with ``code``."""
    engine = accounts_app.registry.database.write_engine
    plan = {"code": None, "left": 0, "inserts": 0}

    def replace(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO students"):
            plan["inserts"] += 1
            if plan["left"] > 0:
                plan["left"] -= 1
                return losing(plan["code"]), {}
        return statement, parameters

    event.listen(engine, "before_cursor_execute", replace, retval=True)

    def arrange(code: str, times: int) -> dict:
        plan.update(code=code, left=times, inserts=0)
        return plan

    yield arrange
    event.remove(engine, "before_cursor_execute", replace)


@pytest.fixture
def accounts_app(postgresql_url):
    app = main({}, **{**TEST_SETTINGS, "sqlalchemy.url": postgresql_url, "retry.attempts": "3"})
    yield app
    empty_database(app.registry.database.write_engine)
    app.registry.database.dispose()


@pytest.fixture
def admin_auth(accounts_app):
    from tests.conftest import Accounts

    return Accounts(accounts_app, None).create("root", admin=True)["auth"]


@pytest.mark.parametrize("code", ["40001", "40P01"])  # serialization failure, deadlock
def test_a_request_that_lost_a_race_is_replayed_and_succeeds(
    racing, accounts_app, admin_auth, code
):
    client = TestApp(accounts_app, extra_environ=HOST)
    plan = racing(code, times=2)
    created = client.post_json("/api/v1/students", {"name": "ada"}, headers=admin_auth)
    assert created.status_int == 201
    assert plan["inserts"] == 3  # two lost attempts, the third committed
    listed = client.get("/api/v1/students", headers=admin_auth).json["items"]
    assert [s["name"] for s in listed] == ["ada"]  # once, not three times


def test_a_request_that_loses_every_attempt_is_told_to_retry_and_changes_nothing(
    racing, accounts_app, admin_auth
):
    client = TestApp(accounts_app, extra_environ=HOST)
    plan = racing("40001", times=3)
    refused = client.post_json(
        "/api/v1/students", {"name": "ada"}, headers=admin_auth, expect_errors=True
    )
    assert plan["inserts"] == 3
    # The database did answer, so not a 503: a conflict, as for a lost versioned write.
    assert refused.status_int == 409, refused
    assert refused.json["type"] == "/api/v1/problems/conflict"
    assert client.get("/api/v1/students", headers=admin_auth).json["items"] == []
