"""RFC 9457 problem details: the one builder of every error response.

Every error a client can meet, from any layer (validation, routing, Cornice's 405/406/415
fallbacks, security, preconditions, rate limits, unexpected exceptions), leaves through
:func:`problem`, so it has one shape: ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``, and for validation an ``errors`` list of
``{location, name, description}``. ``type`` is a stable URI per kind of error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pyramid.httpexceptions import HTTPException, HTTPNotFound
from pyramid.response import Response

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
            body=json.dumps(body, separators=(",", ":")).encode(),
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
    return Problem(kind, detail or KINDS[kind][1], status=status, headers=headers)


def http_exception_view(exc: HTTPException, request) -> Response:
    if exc.code and exc.code < 400:
        return exc  # Redirects and 304s are not errors.
    return from_http_exception(exc)


def not_found_view(exc, request) -> Problem:
    return Problem("not-found", f"No resource at {request.path_info}.")


def unexpected_exception_view(exc: Exception, request) -> Problem:
    # The traceback goes to the log, tagged with the request id; the client gets none of it.
    request_id = getattr(request, "request_id", None) or "-"
    log.error("unexpected error [request_id=%s]", request_id, exc_info=exc)
    settings = request.registry.settings
    detail = "The server met an unexpected error; it has been logged."
    members: dict[str, Any] = {}
    if settings.get("hyperapi.debug"):
        members["exception"] = f"{type(exc).__name__}: {exc}"
    return Problem("internal", detail, **members)


def includeme(config) -> None:
    config.add_exception_view(not_found_view, context=HTTPNotFound)
    config.add_exception_view(http_exception_view, context=HTTPException)
    config.add_exception_view(unexpected_exception_view, context=Exception)


__all__ = [
    "KINDS",
    "PROBLEM_JSON",
    "Problem",
    "problem",
    "problem_type",
    "validation_problem",
]
