"""Requests commit what they write, however they write it, and roll back on any error."""

from __future__ import annotations


def test_a_request_that_only_runs_core_statements_commits(testapp, alice):
    # POST /tokens writes only through Core statements (last_seen, the collection state).
    before = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"]).json
    testapp.post("/api/v1/tokens", headers=alice["auth"])
    after = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"]).json
    assert before["last_seen"] is None
    assert after["last_seen"] is not None
