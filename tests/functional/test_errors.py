"""Every error, from any layer, is a problem detail; a browser gets an HTML page instead.

The application under test is the real one plus a few test-only routes (a view that writes
and then crashes, ...), added through ``pyramid.includes`` by :func:`includeme` below: no
crashing route ships in the package.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from dataclasses import dataclass, field

import pytest
from pyramid.httpexceptions import HTTPConflict
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from webob import Request
from webtest import TestApp

from hyperapi.errors import KINDS
from hyperapi.models import Student
from hyperapi.models.collections import bump
from hyperapi.tweens import NEGOTIATION
from hyperapi.tweens.negotiation import ERROR_PAGE_CSP, PAGE_CSP
from tests.conftest import snapshot

HOST = "api.example.com"
BODY_LIMIT = 1024
#: What the crashing views put in their exception: it must never reach a client.
SECRET = "secret-internal-detail"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "request_id"}

# -- test-only routes -----------------------------------------------------------------------


def write_then_crash(request):
    request.dbsession.add(Student(name="written before the crash"))
    bump(request.dbsession, "students", +1)
    request.dbsession.flush()
    raise RuntimeError(SECRET)


def write_then_return_error(request):
    request.dbsession.add(Student(name="written before the error"))
    bump(request.dbsession, "students", +1)
    request.dbsession.flush()
    return HTTPConflict()  # returned, not raised: no exception view sees it


def crashing_tween_factory(handler, registry):
    """A tween between negotiation and the exception views that fails on one path."""

    def crashing_tween(request):
        if request.path_info == "/__test__/tween-crash":
            raise LookupError(SECRET)
        return handler(request)

    return crashing_tween


def limited(request):
    return Response(json_body={}, content_type="application/json")


def includeme(config) -> None:
    for name, view in (
        ("crash", write_then_crash),
        ("returned-error", write_then_return_error),
        ("limited", limited),
    ):
        config.add_route(f"test.{name}", f"/__test__/{name}")
        config.add_view(view, route_name=f"test.{name}", permission=NO_PERMISSION_REQUIRED)
    config.add_tween(f"{__name__}.crashing_tween_factory", under=NEGOTIATION)


@pytest.fixture(scope="module")
def errors_app(app_factory):
    return app_factory(
        **{
            "pyramid.includes": __name__,
            "hyperapi.max_body_size": str(BODY_LIMIT),
            # A write to an existing resource without If-Match gets 428.
            "hyperapi.require_if_match": "true",
            # One request an hour on the test route; the other limits out of the way.
            "hyperapi.ratelimit.routes": "GET test.limited = 1/hour",
        }
    )


@pytest.fixture
def client(errors_app, clean) -> TestApp:
    return TestApp(errors_app, extra_environ={"HTTP_HOST": HOST})


# -- every kind of error, in every format ----------------------------------------------------

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
ACCEPTS = {"json": "application/json", "browser": BROWSER, "none": None}


@dataclass
class Case:
    """One request that meets one kind of error."""

    kind: str
    method: str
    path: str
    body: bytes | None = None
    content_type: str | None = "application/json"
    #: ``"alice"`` sends alice's credentials.
    who: str | None = None
    #: Headers the error must keep, with a regular expression their value must match.
    kept: dict[str, str] = field(default_factory=dict)
    #: User input the request carries, which an HTML page must escape.
    echoes: str | None = None
    #: Accept headers replacing ACCEPTS for this case (406 is caused by the Accept itself).
    accepts: dict[str, str] | None = None
    #: Headers the request sends besides Accept and credentials.
    headers: dict[str, str] = field(default_factory=dict)
    #: Send the request once beforehand (to use up a rate limit).
    prime: bool = False


def json_body(**members) -> bytes:
    return json.dumps(members).encode()


# The "none" Accept cannot meet a 406 (no Accept accepts everything); a client accepting
# neither JSON nor HTML stands in for it and, like a missing Accept, gets JSON.
NOT_ACCEPTABLE = {
    "json": "application/problem+json",
    "browser": "text/html,application/xhtml+xml",
    "none": "image/png",
}

CASES = [
    Case(
        "validation",
        "POST",
        "/api/v1/users",
        json_body(username="carol", email="c@example.com", password="x" * 12, **{"<script>": 1}),
        echoes="<script>",
    ),
    Case("not-found", "GET", "/api/v1/%3Cscript%3Ealert(1)%3C/script%3E", echoes="<script>"),
    Case("method-not-allowed", "DELETE", "/api/v1/", kept={"Allow": r"^GET, HEAD$"}),
    Case("unauthenticated", "GET", "/api/v1/users", kept={"WWW-Authenticate": r"Bearer.*Basic"}),
    Case("forbidden", "DELETE", "/api/v1/users/{bob}", who="alice"),
    Case(
        "conflict",
        "POST",
        "/api/v1/users",
        json_body(username="alice", email="a2@example.com", password="x" * 12),
    ),
    Case(
        "precondition-failed",
        "PUT",
        "/api/v1/users/{alice}",
        json_body(username="alice", email="alice@example.com", about_me="<script>"),
        who="alice",
        headers={"If-Match": '"999"'},
        kept={"ETag": r'^"\d+'},
    ),
    Case(
        "precondition-required",
        "PUT",
        "/api/v1/users/{alice}",
        json_body(username="alice", email="alice@example.com"),
        who="alice",
    ),
    Case(
        "quota-exceeded",
        "GET",
        "/__test__/limited",
        prime=True,
        kept={"Retry-After": r"^\d+$", "RateLimit-Policy": r"\S"},
    ),
    Case("payload-too-large", "POST", "/api/v1/users", b" " * (BODY_LIMIT + 1)),
    Case("unsupported-media-type", "POST", "/api/v1/users", b"{}", content_type="text/plain"),
    Case("not-acceptable", "GET", "/api/v1/", accepts=NOT_ACCEPTABLE),
    Case("internal", "GET", "/__test__/crash"),
]


@pytest.mark.parametrize("variant", ACCEPTS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.kind)
def test_every_error_is_a_problem_detail_or_for_browsers_an_html_page(
    client, alice, bob, case, variant
):
    accept = (case.accepts or ACCEPTS)[variant]
    headers = {**case.headers} if accept is None else {**case.headers, "Accept": accept}
    if case.who == "alice":
        headers.update(alice["auth"])
    if case.content_type and case.body is not None:
        headers["Content-Type"] = case.content_type
    path = case.path.format(alice=alice["id"], bob=bob["id"])
    if case.prime:
        client.request(path, method=case.method, headers=headers, expect_errors=True)
    response = client.request(
        path, method=case.method, body=case.body, headers=headers, expect_errors=True
    )

    status, title = KINDS[case.kind]
    assert response.status_int == status
    assert "Accept" in response.headers.getall("Vary")[0].split(", ")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    request_id = response.headers["X-Request-ID"]
    for name, pattern in case.kept.items():
        assert re.search(pattern, response.headers[name]), (name, response.headers.get(name))
    text = response.body.decode("utf-8")
    assert SECRET not in text
    assert "Traceback" not in text

    if variant == "browser":
        assert response.content_type == "text/html"
        assert response.charset == "utf-8"
        assert response.headers["Content-Security-Policy"] == ERROR_PAGE_CSP
        assert f"<title>{status} {title}</title>" in text
        assert request_id in text
        if case.echoes:
            assert case.echoes not in text
            assert case.echoes.replace("<", "&lt;").replace(">", "&gt;") in text
        return

    assert response.content_type == "application/problem+json"
    assert "Content-Security-Policy" not in response.headers
    problem = response.json
    assert set(problem) >= PROBLEM_MEMBERS
    assert problem["type"] == f"/api/v1/problems/{case.kind}"
    assert problem["title"] == title
    assert problem["status"] == status
    assert isinstance(problem["detail"], str) and problem["detail"]
    assert problem["instance"] == path
    assert problem["request_id"] == request_id
    if case.kind == "validation":
        assert problem["errors"]
        for error in problem["errors"]:
            assert set(error) == {"location", "name", "description"}
            assert error["location"] in ("body", "querystring", "path", "header")
        assert {"location": "body", "name": "<script>"} in [
            {"location": e["location"], "name": e["name"]} for e in problem["errors"]
        ]


def test_problem_types_are_documented_by_the_api_itself(client):
    for kind, (status, title) in KINDS.items():
        page = client.get(f"/api/v1/problems/{kind}").json
        assert (page["type"], page["status"], page["title"]) == (
            f"/api/v1/problems/{kind}",
            status,
            title,
        )


def test_a_head_request_gets_the_error_status_and_headers_without_a_body(client):
    response = client.head("/api/v1/nothing-here", status=404)
    assert response.content_type == "application/problem+json"
    assert response.body == b""
    assert response.headers["X-Request-ID"]


def test_a_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/v1/", status=405)
    assert response.json["detail"] == "The methods allowed here are GET, HEAD."


# -- unexpected exceptions -------------------------------------------------------------------


def test_an_unexpected_exception_is_a_bare_500_its_traceback_logged_with_the_request_id(
    client, errors_app, caplog
):
    before = snapshot(errors_app)
    with caplog.at_level(logging.ERROR, logger="hyperapi.errors"):
        response = client.get("/__test__/crash", status=500)
    request_id = response.headers["X-Request-ID"]

    assert response.json["type"] == "/api/v1/problems/internal"
    assert set(response.json) == PROBLEM_MEMBERS
    assert request_id in response.json["detail"]
    for leak in (SECRET, "RuntimeError", "Traceback", "write_then_crash"):
        assert leak not in response.text

    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info[0] is RuntimeError
    assert SECRET in caplog.text and "write_then_crash" in caplog.text  # the traceback

    # The row and the collection counter written before the crash were rolled back.
    assert snapshot(errors_app) == before


def test_an_error_response_a_view_returns_rolls_back_and_becomes_a_problem(client, errors_app):
    before = snapshot(errors_app)
    response = client.get("/__test__/returned-error", status=409)
    assert response.content_type == "application/problem+json"
    assert response.json["type"] == "/api/v1/problems/conflict"
    assert snapshot(errors_app) == before


def test_an_exception_raised_by_a_tween_is_a_500_problem_too(client, caplog):
    with caplog.at_level(logging.ERROR, logger="hyperapi.errors"):
        response = client.get("/__test__/tween-crash", headers={"Accept": BROWSER}, status=500)
    assert response.content_type == "text/html"
    assert "<title>500 Internal server error</title>" in response.text
    assert SECRET not in response.text
    assert response.headers["X-Request-ID"] in caplog.text


def test_debug_mode_shows_the_exception_and_its_traceback(app_factory, clean):
    debug_app = app_factory(**{"pyramid.includes": __name__, "hyperapi.debug": "true"})
    client = TestApp(debug_app, extra_environ={"HTTP_HOST": HOST})
    response = client.get("/__test__/crash", status=500)
    assert response.json["exception"] == f"RuntimeError: {SECRET}"
    assert "write_then_crash" in "".join(response.json["traceback"])
    page = client.get("/__test__/crash", headers={"Accept": "text/html"}, status=500)
    assert f"RuntimeError: {SECRET}" in page.text


# -- request ids and security headers ------------------------------------------------------


@pytest.fixture(scope="module")
def proxied_app(app_factory):
    return app_factory(**{"hyperapi.trusted_proxies": "10.0.0.0/8"})


def test_every_response_carries_a_fresh_request_id_and_nosniff(client):
    first = client.get("/api/v1/")
    second = client.get("/api/v1/", headers={"X-Request-ID": "chosen-by-the-client"})
    for response in (first, second):
        assert uuid.UUID(response.headers["X-Request-ID"])
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_an_html_page_without_a_policy_of_its_own_may_load_only_from_this_origin(client):
    page = client.get("/api/v1/docs", headers={"Accept": BROWSER})
    assert page.content_type == "text/html"
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("peer", "sent", "kept"),
    [
        pytest.param("10.1.2.3", "lb-7f3a.42", True, id="trusted-proxy"),
        pytest.param("192.0.2.1", "lb-7f3a.42", False, id="untrusted-peer"),
        pytest.param("10.1.2.3", "has space", False, id="malformed"),
        pytest.param("10.1.2.3", "x" * 129, False, id="too-long"),
    ],
)
def test_a_request_id_is_believed_only_from_a_trusted_proxy(proxied_app, clean, peer, sent, kept):
    client = TestApp(proxied_app, extra_environ={"HTTP_HOST": HOST, "REMOTE_ADDR": peer})
    response = client.get("/api/v1/nothing-here", headers={"X-Request-ID": sent}, status=404)
    echoed = response.headers["X-Request-ID"]
    assert (echoed == sent) is kept
    assert response.json["request_id"] == echoed
    if not kept:
        assert uuid.UUID(echoed)


# -- the body size limit ---------------------------------------------------------------------


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, size=-1):
        raise AssertionError("an oversized body was read")

    readinto = readline = read


def post(app, body_file, *, content_length: int | None) -> Request:
    request = Request.blank(
        "/api/v1/users",
        method="POST",
        environ={"HTTP_HOST": HOST, "wsgi.input": body_file},
        headers={"Content-Type": "application/json"},
    )
    if content_length is None:  # a chunked body: the server says where it ends
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["wsgi.input_terminated"] = True
        request.headers["Transfer-Encoding"] = "chunked"
    else:
        request.environ["CONTENT_LENGTH"] = str(content_length)
    return request.get_response(app)


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(errors_app, clean):
    response = post(errors_app, Unreadable(), content_length=10 * 1024**3)
    assert response.status_int == 413
    assert json.loads(response.body)["type"] == "/api/v1/problems/payload-too-large"


class Endless(io.RawIOBase):
    """An endless chunked body that counts what is read of it."""

    def __init__(self):
        self.consumed = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.consumed > 1024**2:
            raise AssertionError("an oversized chunked body was read far past the limit")
        buffer[:] = b" " * len(buffer)
        self.consumed += len(buffer)
        return len(buffer)


def test_a_chunked_body_over_the_limit_is_refused_after_reading_just_past_the_limit(
    errors_app, clean
):
    body = Endless()
    response = post(errors_app, body, content_length=None)
    assert response.status_int == 413
    assert json.loads(response.body)["type"] == "/api/v1/problems/payload-too-large"
    assert BODY_LIMIT < body.consumed <= BODY_LIMIT + 1 + io.DEFAULT_BUFFER_SIZE


def test_a_chunked_body_within_the_limit_is_served(errors_app, clean):
    body = json_body(username="carol", email="carol@example.com", password="x" * 12)
    response = post(errors_app, io.BytesIO(body), content_length=None)
    assert response.status_int == 201, response.body
    assert json.loads(response.body)["username"] == "carol"


def test_the_negotiation_tween_is_the_outermost(errors_app):
    from pyramid.interfaces import ITweens

    names = [name for name, _ in errors_app.registry.getUtility(ITweens).implicit()]
    assert names[0] == NEGOTIATION
    assert names.index(NEGOTIATION) < names.index("pyramid_tm.tm_tween_factory")
