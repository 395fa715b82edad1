"""The bad-input corpus: hostile or broken requests each get a 4xx problem and change nothing.

Every case names the request (method, path, raw body, headers, whose credentials), the
status and the problem type it must get; the test also checks that not one row of any
table changed. The corpus covers what test_validation.py and the auth tests do not already:
bodies that are deeply nested, not UTF-8 or not quite JSON, huge numbers, overlong strings
and NUL characters in every kind of field; media types; Authorization headers that are
malformed, oversized, duplicated, tampered with, expired or signed for something else;
garbage preconditions on writes; ids that are traversal attempts, SQL or out of range; and
paging and filter parameters out of bounds.
"""

from __future__ import annotations

import base64
import gc
import json
import time
import warnings
from dataclasses import dataclass, field

import pytest
from itsdangerous import TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from tests.conftest import basic, snapshot

JSON = "application/json"


@dataclass(frozen=True)
class Bad:
    method: str
    #: Formatted with the ids of the world (``{alice}``, ``{post}``, ``{student}``...).
    path: str
    status: int
    kind: str
    body: bytes | None = None
    content_type: str | None = JSON
    #: Whose credentials: "alice" (who owns the post), "admin", or a key of CREDENTIALS.
    auth: str = "alice"
    headers: dict[str, str] = field(default_factory=dict)


def js(value) -> bytes:
    return json.dumps(value).encode()


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def case(name: str, *args, **kwargs):
    return pytest.param(Bad(*args, **kwargs), id=name)


def post(name, body, status=400, kind="validation", **kwargs):
    """A new post by alice (anyone may write one)."""
    return case(name, "POST", "/api/v1/posts", status, kind, body, **kwargs)


def patch_user(name, body, status=400, kind="validation", **kwargs):
    """Alice changing her own account."""
    return case(name, "PATCH", "/api/v1/users/{alice}", status, kind, body, **kwargs)


def register(name, body, status=400, kind="validation"):
    """An admin registering a student in a class."""
    return case(name, "POST", "/api/v1/registrations", status, kind, body, auth="admin")


def as_credentials(name, auth):
    """Alice's post, written with broken credentials: 401 before anything is looked at."""
    body = js({"body": "hello"})
    return case(name, "POST", "/api/v1/posts", 401, "unauthenticated", body, auth=auth)


def precondition(name, headers, method="PATCH", body=None, status=412):
    """Alice changing her own post under a precondition that does not hold."""
    if body is None and method != "DELETE":
        body = js({"body": "changed"})
    kind = "precondition-failed"
    return case(name, method, "/api/v1/posts/{post}", status, kind, body, headers=headers)


def path(name, method, url, status=404, kind="not-found", body=None):
    """An admin (who may change anything) naming something that is not an id."""
    return case(name, method, url, status, kind, body, auth="admin")


def query(name, url):
    return case(name, "GET", url, 400, "validation", content_type=None)


BODIES = [
    post("nested-objects-past-the-limit", js({"body": nested(40)})),
    post("nested-arrays-100000-deep", b"[" * 100_000 + b"]" * 100_000),
    post("nested-objects-100000-deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    post("number-for-string", js({"body": 1e308})),
    post("exponent-overflowing-to-infinity", b'{"body": 1e400}'),
    post("infinity-literal", b'{"body": Infinity}'),
    post("negative-infinity-literal", b'{"body": -Infinity}'),
    post("trailing-garbage", b'{"body": "x"} trailing'),
    post("two-documents", b'{"body": "x"}{"body": "y"}'),
    post("single-quotes", b"{'body': 'x'}"),
    post("byte-order-mark", b'\xef\xbb\xbf{"body": "x"}'),
    post("overlong-utf8-encoding", b'{"body": "\xc0\xaf"}'),
    post("truncated-utf8-sequence", b'{"body": "\xe2\x82"}'),
    post("utf8-encoded-surrogate", b'{"body": "\xed\xa0\x80"}'),
    post("escaped-lone-surrogate", b'{"body": "\\ud800"}'),
    post("escaped-nul-in-string", b'{"body": "a\\u0000b"}'),
    post("raw-nul-byte-in-string", b'{"body": "a\x00b"}'),
    post("nul-in-key", b'{"body": "x", "\\u0000": 1}'),
    post("overlong-post-body", js({"body": "x" * 10_001})),
    post("json-null-body", b"null"),
    post("json-number-body", b"5"),
    post("json-true-body", b"true"),
    post("whitespace-only-body", b"   \n "),
    patch_user("duplicate-keys", b'{"about_me": "a", "about_me": "b"}'),
    patch_user("overlong-username", js({"username": "a" * 65})),
    patch_user("overlong-about-me", js({"about_me": "x" * 2001})),
    patch_user("overlong-password", js({"password": "p" * 257})),
    patch_user("overlong-email", js({"email": "a" * 250 + "@example.com"})),
    patch_user("nul-in-username", js({"username": "ali\u0000ce"})),
    patch_user("nul-in-password", js({"password": "long enough\u0000"})),
    patch_user("non-ascii-username", js({"username": "\u0430lice"})),
    patch_user("email-without-at", js({"email": "alice.example.com"})),
    patch_user("object-for-string", js({"about_me": {"$ne": ""}})),
    register("huge-integer-5000-digits", b'{"student": 1' + b"0" * 5000 + b', "class": 1}'),
    register("integer-beyond-64-bits", js({"student": 10**20, "class": 1})),
    register("reference-beyond-int32", js({"student": 146281814144748896, "class": 1})),
    register(
        "url-reference-beyond-int32", js({"student": "/api/v1/students/2147483648", "class": 1})
    ),
    register(
        "url-reference-in-other-digits", js({"student": "/api/v1/students/\u0661", "class": 1})
    ),
    register("float-for-reference", js({"student": 1.5, "class": 1})),
    register("negative-reference", js({"student": -1, "class": 1})),
    register("zero-reference", js({"student": 0, "class": 1})),
    register("boolean-for-reference", js({"student": True, "class": 1})),
    register("reference-to-another-kind", js({"student": "/api/v1/classes/1", "class": 1})),
    register("reference-with-traversal", js({"student": "/api/v1/students/../1", "class": 1})),
    register(
        "timestamp-month-13", js({"student": 1, "class": 1, "enrolled_at": "2024-13-01T00:00:00Z"})
    ),
    register(
        "timestamp-without-zone",
        js({"student": 1, "class": 1, "enrolled_at": "2024-01-01T00:00:00"}),
    ),
    register(
        "timestamp-out-of-range",
        js({"student": 1, "class": 1, "enrolled_at": "9999-12-31T23:59:59-23:59"}),
    ),
    register(
        "timestamp-overlong",
        js({"student": 1, "class": 1, "enrolled_at": "2024-01-01T00:00:00" + "0" * 100 + "Z"}),
    ),
]

MEDIA_TYPES = [
    post(
        "xml",
        b"<post><body>x</body></post>",
        415,
        "unsupported-media-type",
        content_type="application/xml",
    ),
    post(
        "multipart-form",
        b"--x\r\n\r\nbody\r\n--x--",
        415,
        "unsupported-media-type",
        content_type="multipart/form-data; boundary=x",
    ),
    post(
        "utf16-json",
        '{"body": "x"}'.encode("utf-16"),
        415,
        "unsupported-media-type",
        content_type="application/json; charset=utf-16",
    ),
    post(
        "garbage-content-type",
        js({"body": "x"}),
        415,
        "unsupported-media-type",
        content_type=";;;/",
    ),
    post(
        "json-suffix-type",
        js({"body": "x"}),
        415,
        "unsupported-media-type",
        content_type="application/vnd.other+json",
    ),
    patch_user(
        "json-patch-for-merge-patch",
        js([{"op": "replace", "path": "/about_me", "value": "x"}]),
        415,
        "unsupported-media-type",
        content_type="application/json-patch+json",
    ),
    post(
        "accept-only-xml",
        js({"body": "x"}),
        406,
        "not-acceptable",
        headers={"Accept": "application/xml"},
    ),
]

CREDENTIALS = [
    as_credentials("basic-not-base64", "Basic !!!not-base64!!!"),
    as_credentials("basic-without-colon", "Basic " + base64.b64encode(b"alice").decode()),
    as_credentials("basic-non-utf8-bytes", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()),
    as_credentials("basic-non-ascii-header", "Basic \u00e9\u00e9"),
    as_credentials("basic-10-kilobytes", "Basic " + "QUFB" * 2560),
    as_credentials("basic-empty", "Basic "),
    as_credentials("basic-wrong-password", "wrong-password"),
    as_credentials("basic-unknown-user", "unknown-user"),
    # Two Authorization fields arrive joined by a comma (RFC 9110 §5.3), as waitress does.
    as_credentials("authorization-duplicated", "duplicated"),
    as_credentials("unknown-scheme", 'Digest username="alice"'),
    as_credentials("bearer-empty", "Bearer "),
    as_credentials("bearer-10-kilobytes", "Bearer " + "a" * 10_240),
    as_credentials("bearer-garbage", "Bearer abc.def.ghi"),
    as_credentials("bearer-tampered", "tampered"),
    as_credentials("bearer-expired", "expired"),
    as_credentials("bearer-other-salt", "other-salt"),
    as_credentials("bearer-other-secret", "other-secret"),
    as_credentials("bearer-signed-non-object", "non-object"),
    as_credentials("bearer-revoked", "revoked"),
    as_credentials("bearer-signed-user-id-beyond-int32", "huge-user-id"),
]

PRECONDITIONS = [
    precondition("if-match-garbage", {"If-Match": "garbage-without-quotes"}),
    precondition("if-match-unterminated", {"If-Match": '"unterminated'}),
    precondition("if-match-weak-tag", {"If-Match": 'W/"x"'}),
    precondition("if-match-10-kilobytes", {"If-Match": ", ".join(['"x"'] * 2000)}),
    precondition("if-match-empty", {"If-Match": ""}),
    precondition(
        "if-unmodified-since-epoch", {"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}
    ),
    precondition(
        "if-match-stale-beside-garbage-date",
        {"If-Match": '"stale"', "If-Unmodified-Since": "x" * 10_000},
    ),
    precondition("if-none-match-star-on-put", {"If-None-Match": "*"}, method="PUT"),
    precondition("delete-if-match-garbage", {"If-Match": "\x01\x02"}, method="DELETE"),
]

PATHS = [
    path("sql-or-in-id", "DELETE", "/api/v1/posts/1%20OR%201=1"),
    path("sql-quote-in-id", "DELETE", "/api/v1/users/1'%20OR%20'1'='1"),
    path(
        "sql-statement-in-other-id", "PUT", "/api/v1/users/{alice}/followed/1;DROP%20TABLE%20users"
    ),
    path(
        "encoded-traversal-in-id",
        "PATCH",
        "/api/v1/users/..%2f..%2fposts",
        body=js({"about_me": "x"}),
    ),
    path("traversal-out-of-static", "GET", "/api/v1/docs/static/..%2f..%2f..%2fsetup.cfg"),
    path("traversal-out-of-static-delete", "DELETE", "/api/v1/docs/static/../../../setup.cfg"),
    path("arabic-indic-digit-id", "DELETE", "/api/v1/users/%D9%A1"),
    path("nul-in-id", "DELETE", "/api/v1/posts/1%00"),
    path("negative-id", "DELETE", "/api/v1/posts/-1"),
    path("id-beyond-int32", "DELETE", "/api/v1/posts/2147483648"),
    path("ten-digit-id-beyond-int32", "PATCH", "/api/v1/posts/8675828528", body=js({"body": "x"})),
    path("twenty-digit-id", "DELETE", "/api/v1/users/99999999999999999999"),
    path("trace-method", "TRACE", "/api/v1/users", 405, "method-not-allowed"),
]

QUERIES = [
    query("per-page-over-the-maximum", "/api/v1/posts?per_page=1000"),
    query("per-page-negative", "/api/v1/posts?per_page=-1"),
    query("per-page-30-digits", "/api/v1/posts?per_page=" + "9" * 30),
    query("per-page-in-exponent-notation", "/api/v1/posts?per_page=1e2"),
    query("per-page-with-space", "/api/v1/posts?per_page=%205"),
    query("page-negative", "/api/v1/users/{alice}/posts?page=-1"),
    query("page-beyond-any-row", "/api/v1/posts?page=2147483648"),
    query("page-19-digits", "/api/v1/posts?page=9999999999999999999"),
    query("sort-by-password-hash", "/api/v1/users?sort=password_hash"),
    query("sort-by-private-email", "/api/v1/users?sort=email"),
    query("sort-with-sql", "/api/v1/users?sort=id;DROP%20TABLE%20users"),
    query("filter-by-private-email", "/api/v1/users?email=alice@example.com"),
    query("filter-reference-beyond-int32", "/api/v1/posts?author=146281814144748896"),
    query("filter-by-is-admin", "/api/v1/users?is_admin=true"),
    query("cursor-garbage", "/api/v1/posts?cursor=garbage"),
    query("cursor-10-kilobytes", "/api/v1/posts?cursor=" + "a" * 10_240),
    query("query-key-not-utf8", "/api/v1/posts?%ff=1"),
    query("parameter-repeated", "/api/v1/posts?per_page=5&per_page=6"),
]

CORPUS = BODIES + MEDIA_TYPES + CREDENTIALS + PRECONDITIONS + PATHS + QUERIES


@pytest.fixture
def world(testapp, accounts) -> dict:
    alice = accounts.create("alice")
    admin = accounts.create("root", admin=True)
    auth = {"alice": alice["auth"], "admin": admin["auth"]}
    made = testapp.post_json("/api/v1/posts", {"body": "alice's"}, headers=alice["auth"])
    student = testapp.post_json("/api/v1/students", {"name": "Sam"}, headers=admin["auth"])
    klass = testapp.post_json("/api/v1/classes", {"name": "Maths"}, headers=admin["auth"])
    ids = {
        "alice": alice["id"],
        "post": made.json["id"],
        "student": student.json["id"],
        "class": klass.json["id"],
    }
    return {"ids": ids, "auth": auth, "alice": alice, "accounts": accounts}


class PastSigner(TimestampSigner):
    """Signs as if ten hours ago: a token past any sensible lifetime."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 10 * 3600


def authorization(app, testapp, world, name: str) -> dict[str, str]:
    """The Authorization header of a CREDENTIALS case (made before the snapshot is taken)."""
    alice = world["alice"]
    if name in world["auth"]:
        return world["auth"][name]
    if name == "wrong-password":
        return basic("alice", "not her password")
    if name == "unknown-user":
        return basic("nobody")
    if name == "duplicated":
        value = alice["auth"]["Authorization"]
        return {"Authorization": f"{value}, {value}"}
    if " " in name:
        return {"Authorization": name}
    serializer = app.registry.tokens.serializer
    claims = {"u": alice["id"], "j": "forged-token-id", "g": 0}
    if name == "tampered":
        token = world["accounts"].token(alice)["Authorization"].removeprefix("Bearer ")
        payload, rest = token.split(".", 1)
        # Another user's id in the payload, under the original signature.
        forged = base64.urlsafe_b64encode(js({**claims, "u": alice["id"] + 1})).rstrip(b"=")
        token = forged.decode() + "." + rest
        assert token.split(".", 1)[0] != payload
    elif name == "expired":
        token = URLSafeTimedSerializer(
            serializer.secret_keys, salt=serializer.salt, signer=PastSigner
        ).dumps(claims)
    elif name == "other-salt":
        # Signed with the server's own secret, but for paging cursors, not for tokens.
        token = URLSafeSerializer(serializer.secret_keys, salt="hyperapi.paging.cursor").dumps(
            claims
        )
    elif name == "other-secret":
        token = URLSafeTimedSerializer("another-server-secret-" + "y" * 32, salt=serializer.salt)
        token = token.dumps(claims)
    elif name == "non-object":
        token = serializer.dumps("alice")
    elif name == "huge-user-id":
        token = serializer.dumps({**claims, "u": 10**30})
    elif name == "revoked":
        header = world["accounts"].token(alice)
        testapp.delete("/api/v1/tokens", headers=header, status=204)
        return header
    else:  # pragma: no cover - a misspelt case
        raise AssertionError(name)
    return {"Authorization": "Bearer " + token}


def send(testapp, bad: Bad, ids: dict, headers: dict[str, str]):
    url = bad.path.format(**ids)
    headers = {**headers, **bad.headers}
    if bad.content_type is not None and bad.body is not None:
        headers["Content-Type"] = bad.content_type
    return testapp.request(
        url,
        method=bad.method,
        body=bad.body or b"",
        headers=headers,
        expect_errors=True,
    )


def test_the_corpus_has_at_least_60_distinct_cases():
    ids = [param.id for param in CORPUS]
    assert len(ids) == len(set(ids)) >= 60


@pytest.mark.parametrize("bad", CORPUS)
def test_bad_input_gets_a_4xx_problem_and_changes_nothing(app, testapp, world, bad):
    headers = authorization(app, testapp, world, bad.auth)
    before = snapshot(app)
    response = send(testapp, bad, world["ids"], headers)
    assert response.status_int == bad.status, response.text[:500]
    assert response.content_type == "application/problem+json"
    problem = response.json
    assert problem["type"] == f"/api/v1/problems/{bad.kind}"
    assert problem["status"] == bad.status
    if bad.status == 401:
        assert "WWW-Authenticate" in response.headers
    assert snapshot(app) == before


def test_a_body_over_webobs_10_kilobyte_threshold_leaves_no_file_open(testapp, alice):
    """pyramid_retry copies each body; a copy in a temporary file was never closed."""
    headers = {**alice["auth"], "Content-Type": JSON}
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        testapp.post("/api/v1/posts", js({"body": "x" * 20_000}), headers=headers, status=400)
        testapp.post("/api/v1/posts", js({"body": "x" * 9_000}), headers=headers, status=201)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
