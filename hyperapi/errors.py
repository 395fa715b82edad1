"""RFC 9457 problem details: the one builder of every error response.

Every error a client can meet, from any layer (validation, routing, Cornice's 405/406/415
fallbacks, security, preconditions, rate limits, unexpected exceptions), is a :class:`Problem`,
so it has one shape: ``application/problem+json`` with ``type``, ``title``, ``status`` and
``detail``, and for validation an ``errors`` list of ``{location, name, description}``.
``type`` is a stable URI per kind of error (:data:`KINDS`).

Views raise or return a Problem; the exception views below turn whatever else is raised into
one (a database that cannot be reached gives a 503 with ``Retry-After``, never a 500);
:func:`as_problem` turns an error response that some layer *returned* into one. The
negotiation tween (``hyperapi.tweens.negotiation``) then adds ``instance`` and
``request_id`` and renders the problem as JSON or, for a browser, as an HTML page.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from typing import Any

from pyramid.httpexceptions import HTTPException, HTTPNotFound
from pyramid.response import Response
from pyramid_retry import IRetryableError, is_error_retryable, is_last_attempt
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from zope.interface import alsoProvides

from .models import SAFE_METHODS, commit_in_doubt

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

#: kind -> (status, title). The kind is the last segment of the problem's ``type`` URI.
KINDS: dict[str, tuple[int, str]] = {
    "validation": (400, "Invalid request"),
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Forbidden"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "not-acceptable": (406, "Not acceptable"),
    "conflict": (409, "Conflict"),
    "precondition-failed": (412, "Precondition failed"),
    "payload-too-large": (413, "Payload too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "precondition-required": (428, "Precondition required"),
    "quota-exceeded": (429, "Too many requests"),
    "internal": (500, "Internal server error"),
    "service-unavailable": (503, "Service unavailable"),
}

#: The kind used for an HTTP status raised by a layer that did not name one.
KIND_BY_STATUS = {status: kind for kind, (status, _) in KINDS.items()}

#: Headers of an HTTPException that a problem response keeps.
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "Location")

#: Problem types are relative references to the API's own description of each kind
#: (RFC 9457 §3.1.1 allows relative references; they resolve against the request URL, so
#: they are dereferenceable on every deployment without naming its host).
TYPE_BASE = "/api/v1/problems/"


def problem_type(kind: str) -> str:
    return TYPE_BASE + kind


class Problem(HTTPException):
    """An error response in problem-details form; raise it or return it.

    Being a Pyramid ``HTTPException`` it is also a ``Response``: pyramid_tm's commit veto
    sees its status and rolls the transaction back whether it is raised or returned.
    """

    def __init__(
        self,
        kind: str,
        detail: str,
        *,
        status: int | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **members: Any,
    ):
        default_status, title = KINDS[kind]
        status = status or default_status
        self.code = status
        self.title = title
        self.kind = kind
        body: dict[str, Any] = {
            "type": problem_type(kind),
            "title": title,
            "status": status,
            "detail": detail,
        }
        if errors is not None:
            body["errors"] = errors
        body.update(members)
        self.problem = body
        Response.__init__(
            self,
            status=status,
            body=_dumps(body),
            content_type=PROBLEM_JSON,
            charset=None,
            headerlist=None,
        )
        self.explanation = detail
        self.detail = detail
        Exception.__init__(self, detail)
        if headers:
            self.headers.update(headers)

    def __str__(self) -> str:
        return self.detail

    def prepare(self, environ) -> None:
        """Keep our body: HTTPException.prepare() would replace it with its own page."""

    def add_members(self, **members: Any) -> None:
        """Add members the raiser did not know (``instance``, ``request_id``); keep its own."""
        for name, value in members.items():
            self.problem.setdefault(name, value)
        if self.content_type == PROBLEM_JSON:
            self.body = _dumps(self.problem)


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def problem(kind: str, detail: str, **kwargs: Any) -> Problem:
    """Build (do not raise) a problem response of ``kind``."""
    return Problem(kind, detail, **kwargs)


def validation_problem(errors: list[dict[str, str]], detail: str | None = None) -> Problem:
    if detail is None:
        names = ", ".join(sorted({e["name"] or e["location"] for e in errors}))
        detail = f"The request is not valid: {names}."
    return Problem("validation", detail, errors=errors)


def from_http_exception(exc: HTTPException) -> Problem:
    """Turn an HTTPException raised by Pyramid, Cornice or a library into a problem."""
    if isinstance(exc, Problem):
        return exc
    status = exc.code or 500
    kind = KIND_BY_STATUS.get(status)
    if kind is None:
        kind = "internal" if status >= 500 else "validation"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else exc.explanation
    headers = {name: exc.headers[name] for name in KEPT_HEADERS if name in exc.headers}
    if not detail and kind == "method-not-allowed" and "Allow" in headers:
        detail = f"The methods allowed here are {headers['Allow']}."
    return Problem(kind, detail or KINDS[kind][1], status=status, headers=headers)


#: Headers of a returned error response that describe the content, not the error: a problem
#: replaces them with its own.
CONTENT_HEADERS = frozenset(("content-type", "content-length", "content-encoding"))


def as_problem(response: Response) -> Problem | None:
    """The problem an error response stands for, or None if it is a representation.

    A Problem is itself. An ``HTTPException`` that a layer *returned* (so no exception view
    saw it) becomes the problem of its status and keeps every header but its content's. Any
    other response (a heartbeat's 503 listing which backend failed) is what its view chose
    to say, and stays as it is.
    """
    if isinstance(response, Problem):
        return response
    if not isinstance(response, HTTPException):
        return None
    converted = from_http_exception(response)
    for name, value in response.headerlist:
        if name.lower() not in CONTENT_HEADERS and name not in converted.headers:
            converted.headerlist.append((name, value))
    return converted


def http_exception_view(exc: HTTPException, request) -> Response:
    if exc.code and exc.code < 400:
        return exc  # Redirects and 304s are not errors.
    return from_http_exception(exc)


def not_found_view(exc, request) -> Problem:
    return Problem("not-found", f"No resource at {request.path_info}.")


def unexpected_exception_view(exc: Exception, request) -> Problem:
    """500 for any exception nothing else handled: the log gets the traceback, the client none.

    The log record carries the request id that the response's ``X-Request-ID`` echoes, so a
    client can quote it and an operator can find the traceback. An error that pyramid_retry
    will replay (a lost race) is not yet a failure and is logged quietly.
    """
    request_id = request.request_id
    if is_error_retryable(request, exc) and not is_last_attempt(request):
        log.info("retrying after %s [request_id=%s]", type(exc).__name__, request_id)
    else:
        log.error(
            "unexpected error in %s %s [request_id=%s]",
            request.method,
            request.path,
            request_id,
            exc_info=exc,
        )
    detail = (
        "The server met an unexpected error. It has been logged with request id "
        f"{request_id}; quote it when reporting the problem."
    )
    members: dict[str, Any] = {}
    if request.registry.settings.get("hyperapi.debug"):
        members["exception"] = f"{type(exc).__name__}: {exc}"
        members["traceback"] = traceback.format_exception(exc)
    return Problem("internal", detail, **members)


#: Database errors that say "not now" rather than "this request is wrong": the server is
#: unreachable, refused or dropped the connection, is shutting down, or the pool had no
#: connection to lend in time. PEP 249 puts every such error in OperationalError (or
#: InterfaceError when the driver itself gave up on the connection).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)

#: The ``outcome`` member of the 503 that an unsafe request gets when the database fails:
#: what became of its change, and what that means for the client. The OpenAPI document
#: (``hyperapi.openapi``) describes the member from this table, so the two cannot drift.
OUTCOME_NOT_APPLIED = "not-applied"
OUTCOME_UNKNOWN = "unknown"
OUTCOMES: dict[str, str] = {
    OUTCOME_NOT_APPLIED: "the change was not applied: the failure came before COMMIT was "
    "sent and the transaction was rolled back, so the request can be retried after "
    "Retry-After without applying it twice",
    OUTCOME_UNKNOWN: "the change may or may not have been applied: the connection failed "
    "while COMMIT was in flight; read the resource (a GET is safe to retry) before retrying "
    "a request that is not idempotent, such as a POST",
}

#: How often the "database unavailable" warning may be logged, in seconds: an outage fails
#: every request, and one line per interval says so (the others are logged at DEBUG).
DATABASE_WARNING_INTERVAL = 10.0


class Throttle:
    """Admits one event per ``interval`` seconds and counts the ones it held back."""

    def __init__(self, interval: float, clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.next = 0.0
        self.held = 0
        self.lock = threading.Lock()

    def admit(self) -> int | None:
        """None to stay quiet; else how many events were held back since the last one."""
        with self.lock:
            now = self.clock()
            if now < self.next:
                self.held += 1
                return None
            self.next = now + self.interval
            held, self.held = self.held, 0
            return held


def describe(exc: Exception) -> str:
    """The driver's error class and the first line of its message (no statement, no data)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def tag_lost_race(request, exc: Exception) -> bool:
    """Mark a transaction that lost a race (SQLSTATE 40: serialization failure, deadlock)
    retryable, so that pyramid_retry replays the request.

    zope.sqlalchemy knows these errors are transient, and pyramid_tm asks it, but only when
    no commit veto rejected the response first; hyperapi sets one (``tm.commit_veto``) and
    this view's 503 is such a response, so the question is asked here, while the request's
    transaction and its session are still there to answer it.
    """
    try:
        transaction = request.tm.get()
    except Exception:  # no transaction (called from a tween, after pyramid_tm): no retry
        return False
    if transaction.isRetryableError(exc):
        alsoProvides(exc, IRetryableError)
        return True
    return False


def database_unavailable_view(exc: Exception, request) -> Problem:
    """503 with ``Retry-After`` when the database cannot serve: retry later, not a bug.

    An unsafe request's problem says what became of its change (``outcome``):
    ``not-applied`` when the failure came before ``COMMIT`` was sent (the transaction was
    rolled back, so retrying cannot apply it twice), ``unknown`` when the connection failed
    while ``COMMIT`` was in flight: the database may have stored the change and only failed
    to say so, and the client must look (GET) before it retries a non-idempotent request.
    The log gets one line per outage interval, without a traceback: the cause is outside
    the code.
    """
    in_doubt = commit_in_doubt(exc)
    if tag_lost_race(request, exc) and is_last_attempt(request):
        # The database answered: it is reachable, and the request lost on every attempt.
        return Problem(
            "conflict",
            "Concurrent requests changed what this one depends on, on every attempt; "
            "nothing was changed. Retry it.",
        )
    if is_error_retryable(request, exc) and not is_last_attempt(request):
        log.info("retrying after %s [request_id=%s]", type(exc).__name__, request.request_id)
    else:
        # A commit in doubt is rare and worth an operator's look: it is never held back.
        held = 0 if in_doubt else request.registry.database_warnings.admit()
        log.log(
            logging.DEBUG if held is None else logging.WARNING,
            "database unavailable in %s %s [request_id=%s]%s: %s%s",
            request.method,
            request.path,
            request.request_id,
            " during COMMIT, outcome unknown" if in_doubt else "",
            describe(exc),
            f" ({held} more since the last report)" if held else "",
        )
    retry_after = request.registry.settings["hyperapi.database.retry_after"]
    members: dict[str, Any] = {}
    if request.method not in SAFE_METHODS:
        members["outcome"] = OUTCOME_UNKNOWN if in_doubt else OUTCOME_NOT_APPLIED
    return Problem(
        "service-unavailable",
        f"The database cannot be reached just now; retry in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
        **members,
    )


def exception_response(exc: Exception, request) -> Response:
    """The response for an exception raised where no exception view runs (a tween's)."""
    if isinstance(exc, HTTPNotFound):
        return not_found_view(exc, request)
    if isinstance(exc, HTTPException):
        return http_exception_view(exc, request)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable_view(exc, request)
    return unexpected_exception_view(exc, request)


def includeme(config) -> None:
    config.registry.database_warnings = Throttle(DATABASE_WARNING_INTERVAL)
    config.add_exception_view(not_found_view, context=HTTPNotFound)
    config.add_exception_view(http_exception_view, context=HTTPException)
    for context in DATABASE_UNAVAILABLE:
        config.add_exception_view(database_unavailable_view, context=context)
    config.add_exception_view(unexpected_exception_view, context=Exception)


__all__ = [
    "KINDS",
    "OUTCOMES",
    "PROBLEM_JSON",
    "Problem",
    "as_problem",
    "exception_response",
    "problem",
    "problem_type",
    "validation_problem",
]
