"""The request-body size limit (``hyperapi.max_body_size``), held before a body is read.

pyramid_retry replays a request that lost a race, so before any tween runs it copies the
whole body into memory or a temporary file (``make_body_seekable``). A limit checked by a
tween or a view would come after that copy: a client could make every process buffer
gigabytes just to be told 413. So the limit is enforced at the one hook pyramid_retry calls
before copying, its ``activate_hook``:

- a ``Content-Length`` over the limit: the request gets one attempt (nothing to replay), so
  the body is never copied, and is refused with 413 before any view runs;
- no ``Content-Length`` (a chunked body): the input is capped at the limit plus one byte,
  so at most that much is ever read; a body that reaches the cap is refused with 413.

The 413 itself is raised when Pyramid announces the request (``NewRequest``), inside the
tweens, so it is rendered, counted and logged like every other error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyramid.events import NewRequest

from .errors import Problem

#: Set in the WSGI environ when the body is over the limit.
TOO_LARGE = "hyperapi.body_too_large"


def too_large(limit: int) -> Problem:
    return Problem("payload-too-large", f"Request bodies are limited to {limit} bytes.")


class CappedInput:
    """A ``wsgi.input`` that yields at most ``limit + 1`` bytes and flags a longer body."""

    def __init__(self, stream, limit: int, environ: dict[str, Any]):
        self.stream = stream
        self.remaining = limit + 1
        self.environ = environ

    def _take(self, data: bytes) -> bytes:
        self.remaining -= len(data)
        if self.remaining <= 0:
            self.environ[TOO_LARGE] = True
        return data

    def _budget(self, size: int | None) -> int:
        return self.remaining if size is None or size < 0 else min(size, self.remaining)

    def read(self, size: int | None = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        return self._take(self.stream.read(self._budget(size)))

    def readline(self, size: int | None = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        return self._take(self.stream.readline(self._budget(size)))


class BodyLimitGuard:
    """pyramid_retry's ``activate_hook``: runs on each request before its body is copied.

    ``then`` is the application's own activate hook, if it had one; it still decides the
    number of attempts of every request whose body is within the limit.
    """

    def __init__(self, limit: int, then: Callable[[Any], int | None] | None = None):
        self.limit = limit
        self.then = then

    def __call__(self, request) -> int | None:
        environ = request.environ
        length = request.content_length
        if length is not None and length > self.limit:
            environ[TOO_LARGE] = True
            return 1  # one attempt needs no seekable copy: the body is never read
        if length is None and request.is_body_readable:
            environ["wsgi.input"] = CappedInput(environ["wsgi.input"], self.limit, environ)
        # The copy stays in memory: the views read the whole body into memory anyway, and
        # WebOb's temporary file for a body over 10 kB is never closed, only collected, so
        # every such request would hold a file descriptor until the garbage collector ran.
        request.request_body_tempfile_limit = self.limit + 1  # CappedInput gives limit + 1
        return self.then(request) if self.then is not None else None


def refuse_too_large(event: NewRequest) -> None:
    request = event.request
    if request.environ.get(TOO_LARGE):
        raise too_large(request.registry.settings["hyperapi.max_body_size"])


def includeme(config) -> None:
    settings = config.get_settings()
    then = config.maybe_dotted(settings.get("retry.activate_hook"))
    if isinstance(then, BodyLimitGuard):  # settings reused from another application
        then = then.then
    # Read by pyramid_retry when the configuration is committed, after this include.
    settings["retry.activate_hook"] = BodyLimitGuard(settings["hyperapi.max_body_size"], then)
    config.add_subscriber(refuse_too_large, NewRequest)
