"""RFC 9110 §13 conformance, as a table: method x preconditions x whether the target exists.

Each row names the precondition header fields sent (built from the target's current ETag
``E`` and Last-Modified ``LM``) and the status RFC 9110 §13.2.2 requires when the target
exists: one for GET/HEAD and one for PUT/PATCH/DELETE. ``ok`` stands for the method's
unconditional success (200, or 204 for DELETE). When the target does not exist, the
unconditional answer is 404, so every precondition is ignored (§13.2.1) and it stays 404.
"""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

import pytest

from tests.conftest import basic

OK = "ok"

# name: (headers(E, LM), status for GET/HEAD, status for PUT/PATCH/DELETE)
CASES = {
    # If-Match: strong comparison, lists, "*" (RFC 9110 §13.1.1)
    "if-match current": (lambda e, lm: {"If-Match": e}, OK, OK),
    "if-match other": (lambda e, lm: {"If-Match": '"other"'}, 412, 412),
    "if-match star": (lambda e, lm: {"If-Match": "*"}, OK, OK),
    "if-match weak current": (lambda e, lm: {"If-Match": "W/" + e}, 412, 412),
    "if-match list with current": (lambda e, lm: {"If-Match": f'"a", {e} ,"b"'}, OK, OK),
    "if-match list without current": (lambda e, lm: {"If-Match": '"a", W/"b"'}, 412, 412),
    "if-match malformed": (lambda e, lm: {"If-Match": e.strip('"')}, 412, 412),
    "if-match star in list": (lambda e, lm: {"If-Match": f"*, {e}"}, 412, 412),
    # If-None-Match: weak comparison, lists, "*" (RFC 9110 §13.1.2)
    "if-none-match current": (lambda e, lm: {"If-None-Match": e}, 304, 412),
    "if-none-match other": (lambda e, lm: {"If-None-Match": '"other"'}, OK, OK),
    "if-none-match star": (lambda e, lm: {"If-None-Match": "*"}, 304, 412),
    "if-none-match weak current": (lambda e, lm: {"If-None-Match": "W/" + e}, 304, 412),
    "if-none-match list with current": (
        lambda e, lm: {"If-None-Match": f'"a", W/{e}'},
        304,
        412,
    ),
    "if-none-match list without current": (
        lambda e, lm: {"If-None-Match": '"a", "b"'},
        OK,
        OK,
    ),
    "if-none-match malformed": (lambda e, lm: {"If-None-Match": "W/" + e[:-1]}, OK, 412),
    # If-Modified-Since: GET/HEAD only (RFC 9110 §13.1.3)
    "if-modified-since equal": (lambda e, lm: {"If-Modified-Since": http(lm)}, 304, OK),
    "if-modified-since before": (
        lambda e, lm: {"If-Modified-Since": http(lm - HOUR)},
        OK,
        OK,
    ),
    "if-modified-since after": (lambda e, lm: {"If-Modified-Since": http(lm + HOUR)}, 304, OK),
    "if-modified-since malformed": (
        lambda e, lm: {"If-Modified-Since": "yesterday"},
        OK,
        OK,
    ),
    "if-modified-since rfc850": (lambda e, lm: {"If-Modified-Since": rfc850(lm)}, 304, OK),
    "if-modified-since asctime": (lambda e, lm: {"If-Modified-Since": asctime(lm)}, 304, OK),
    # If-Unmodified-Since (RFC 9110 §13.1.4)
    "if-unmodified-since equal": (lambda e, lm: {"If-Unmodified-Since": http(lm)}, OK, OK),
    "if-unmodified-since before": (
        lambda e, lm: {"If-Unmodified-Since": http(lm - HOUR)},
        412,
        412,
    ),
    "if-unmodified-since after": (
        lambda e, lm: {"If-Unmodified-Since": http(lm + HOUR)},
        OK,
        OK,
    ),
    "if-unmodified-since malformed": (
        lambda e, lm: {"If-Unmodified-Since": http(lm - HOUR) + ", " + http(lm)},
        OK,
        OK,
    ),
    # Precedence (RFC 9110 §13.2.2)
    "if-match current wins over stale if-unmodified-since": (
        lambda e, lm: {"If-Match": e, "If-Unmodified-Since": http(lm - HOUR)},
        OK,
        OK,
    ),
    "if-match other fails before if-none-match": (
        lambda e, lm: {"If-Match": '"other"', "If-None-Match": '"other"'},
        412,
        412,
    ),
    "if-match current then if-none-match current": (
        lambda e, lm: {"If-Match": e, "If-None-Match": e},
        304,
        412,
    ),
    "if-none-match current wins over old if-modified-since": (
        lambda e, lm: {"If-None-Match": e, "If-Modified-Since": http(lm - HOUR)},
        304,
        412,
    ),
    "if-none-match other wins over current if-modified-since": (
        lambda e, lm: {"If-None-Match": '"other"', "If-Modified-Since": http(lm)},
        OK,
        OK,
    ),
}

METHODS = ("GET", "HEAD", "PUT", "PATCH", "DELETE")
SUCCESS = {"GET": 200, "HEAD": 200, "PUT": 200, "PATCH": 200, "DELETE": 204}
HOUR = dt.timedelta(hours=1)


def http(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def rfc850(moment: dt.datetime) -> str:
    return moment.strftime("%A, %d-%b-%y %H:%M:%S GMT")


def asctime(moment: dt.datetime) -> str:
    return moment.strftime("%a %b ") + f"{moment.day:>2}" + moment.strftime(" %H:%M:%S %Y")


def expected(case: str, method: str, exists: bool) -> int:
    if not exists:
        return 404
    _, read, write = CASES[case]
    status = read if method in ("GET", "HEAD") else write
    return SUCCESS[method] if status == OK else status


def send(testapp, method: str, path: str, headers: dict, status: int):
    if method in ("PUT", "PATCH"):
        call = testapp.put_json if method == "PUT" else testapp.patch_json
        return call(path, {"body": "changed"}, headers=headers, status=status)
    return getattr(testapp, method.lower())(path, headers=headers, status=status)


def test_the_table_covers_at_least_a_hundred_combinations():
    assert len(CASES) * len(METHODS) * 2 >= 100


@pytest.mark.parametrize("case", list(CASES))
def test_preconditions_follow_rfc9110(testapp, alice, case):
    """Every method, on a target that exists and on one that does not (one test per row,
    so that the database is emptied once per row rather than once per combination)."""
    auth = basic(alice["username"])
    post = None
    for exists in (True, False):
        for method in METHODS:
            if post is None:
                post = testapp.post_json("/api/v1/posts", {"body": "first"}, headers=auth).json
            if check(testapp, auth, post, case, method, exists):
                post = None  # it was written: the next combination needs a fresh one


def check(testapp, auth, post, case, method, exists) -> bool:
    """Send one combination and check the answer; True when it changed the post."""
    path = f"/api/v1/posts/{post['id']}"
    current = testapp.get(path, headers=auth)
    etag = current.headers["ETag"]
    modified = current.last_modified
    target = path if exists else f"/api/v1/posts/{post['id'] + 1000}"
    headers = {**auth, **CASES[case][0](etag, modified)}
    status = expected(case, method, exists)

    response = send(testapp, method, target, headers, "*")

    combination = f"{method} {'existing' if exists else 'missing'} target, {case}: {headers}"
    assert response.status_int == status, combination
    if status == 304:
        assert response.body == b"", combination
        assert response.headers["ETag"] == etag, combination
        assert response.headers["Last-Modified"] == current.headers["Last-Modified"]
        assert "Content-Type" not in response.headers, combination
    elif status == 412:
        # The current validators and representation: what the client is up against.
        assert response.headers["ETag"] == etag, combination
        if method != "HEAD":
            assert response.json["current"]["body"] == "first", combination
    after = testapp.get(path, headers=auth, expect_errors=True)
    if method in ("PUT", "PATCH", "DELETE") and status not in (200, 204):
        # A write refused by a precondition (or aimed at nothing) changed nothing.
        assert after.headers["ETag"] == etag and after.json["body"] == "first", combination
    return method in ("PUT", "PATCH", "DELETE") and status in (200, 204)
