"""The outermost tween: every error leaves as problem+json, or as HTML for a browser.

Errors are made in many places (Cornice returns its validation errors and raises its own
405/406/415, Pyramid raises 404s, the security policy 401/403, other tweens 412/428/429, and
anything may raise unexpectedly), and all of them are turned into :class:`~hyperapi.errors.
Problem` responses there. This tween is where they are *rendered*, once:

- ``application/problem+json`` (RFC 9457) by default, including for a missing ``Accept``,
  ``*/*``, or an ``Accept`` that names nothing we can send (RFC 9110 §12.5.1 lets an error
  answer in a type the client did not ask for rather than hide the error behind a 406);
- a small HTML page (Jinja2, autoescaped) when the client prefers ``text/html`` to JSON, as
  browsers do;
- either way with ``Vary: Accept``, the headers the error needs (``Allow`` on 405,
  ``WWW-Authenticate`` on 401, ``Retry-After`` on 429...), ``instance`` (the request's path)
  and the request id.

Being outermost it also catches what the exception views cannot see (an exception raised by
another tween or by pyramid_tm's commit), and it stamps every response, error or not, with
``X-Request-ID`` and ``X-Content-Type-Options: nosniff``, and every HTML page with a strict
``Content-Security-Policy`` (an error page may load nothing at all; another page that sets no
policy of its own may load only from this origin).
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader
from pyramid_retry import is_error_retryable, is_last_attempt

from ..errors import PROBLEM_JSON, Problem, as_problem, exception_response
from ..request_id import HEADER as REQUEST_ID_HEADER
from ..resources.representation import add_vary

HTML = "text/html"
#: In order of preference: on a tie, JSON wins.
OFFERS = (PROBLEM_JSON, "application/json", HTML)

#: An error page loads nothing, runs nothing, and may not be framed or submit anywhere.
ERROR_PAGE_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#: Any other HTML page that sets no policy of its own (the API docs page) loads scripts,
#: styles and images from this origin only: no inline script, no plugins, no framing.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def prefers_html(request) -> bool:
    """Whether the client would rather read HTML than JSON (a browser's ``Accept``)."""
    offers = request.accept.acceptable_offers(OFFERS)
    return bool(offers) and offers[0][0] == HTML


def render(request, problem: Problem, template) -> None:
    """Give ``problem`` the members only the request knows, and the client's media type."""
    problem.add_members(instance=request.path, request_id=request.request_id)
    # The format depends on Accept: a cache must not hand a browser's page to an API client.
    add_vary(problem, "Accept")
    if prefers_html(request):
        page = template.render(problem.problem)
        problem.body = page.encode("utf-8")
        problem.content_type = HTML
        problem.charset = "utf-8"
        problem.headers["Content-Security-Policy"] = ERROR_PAGE_CSP


#: The fields every response gets from here, in place of any set before.
STAMPED = frozenset((REQUEST_ID_HEADER.lower(), "x-content-type-options"))


def stamp(response, request_id: str) -> None:
    """Set the fields of every response, with one look at its header list.

    ``X-Request-ID``; ``X-Content-Type-Options: nosniff``, as browsers must not guess a type
    other than the one sent (an error echoing input could otherwise be sniffed into HTML);
    and an HTML page's default Content-Security-Policy.
    """
    headerlist = response.headerlist
    present = {field.lower() for field, _ in headerlist}
    if not present.isdisjoint(STAMPED):
        headerlist[:] = [(f, v) for f, v in headerlist if f.lower() not in STAMPED]
    headerlist.append((REQUEST_ID_HEADER, request_id))
    headerlist.append(("X-Content-Type-Options", "nosniff"))
    if (
        "content-type" in present
        and "content-security-policy" not in present
        and response.content_type == HTML
    ):
        headerlist.append(("Content-Security-Policy", PAGE_CSP))


def negotiation_tween_factory(handler, registry):
    templates = Environment(
        loader=PackageLoader("hyperapi", "templates"), autoescape=True, auto_reload=False
    )
    template = templates.get_template("error.jinja2")

    def negotiation_tween(request):
        try:
            response = handler(request)
        except Exception as exc:
            # pyramid_retry replays a request that lost a race; only its last attempt fails.
            if is_error_retryable(request, exc) and not is_last_attempt(request):
                raise
            response = exception_response(exc, request)
        if response.status_code >= 400:
            problem = as_problem(response)
            if problem is not None:
                render(request, problem, template)
                response = problem
        stamp(response, request.request_id)
        return response

    return negotiation_tween
