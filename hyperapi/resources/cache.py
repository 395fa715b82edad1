"""The server-side response cache: expensive GETs answered from memory or Redis.

As drf-extensions' ``cache_response``, enabled per route with a timeout
(``hyperapi.response_cache.routes = posts.collection=30 users.posts=30``). What differs is
invalidation: there is none to do. The key digests the route, the URL (scheme, host, path
and query string, all of which the links in the body are made of) and the response's ETag,
which already covers the media type, the viewer's variant and the version of the row or of
every collection the page depends on (hyperapi.resources.validators). Every create, update
and delete bumps a version, so the next request computes a new key and the old entry is
never read again; it ages out after its timeout or is pushed out by newer ones. No write
has to flush anything, in any process.

Only 200 responses with an ETag are stored; errors are not cached (a 404 cached past the
create that fixes it would be wrong, and an error costs less to recompute than to store).

Entries live in a store providing ``IResponseStore``: ``memory`` (per process, bounded LRU,
the default), ``redis`` (shared, ``hyperapi.redis.url``) or the dotted path of a class
called with the registry. A store that fails is a miss, never an error.
"""

from __future__ import annotations

import json
import logging

from pyramid.response import Response
from zope.interface import implementer

from ..interfaces import IResponseStore
from ..security.cache import MemoryCache
from ..settings import ConfigurationError
from .representation import digest

log = logging.getLogger(__name__)

#: The headers of a stored response; the rest (Vary, Cache-Control, rate limits) are added
#: per request by the layers that own them.
STORED_HEADERS = ("Content-Type", "ETag", "Last-Modified", "Link")
KEY_PREFIX = "hyperapi:response:"


@implementer(IResponseStore)
class MemoryStore(MemoryCache):
    """Per-process entries: a bounded LRU whose entries expire."""

    def __init__(self, registry):
        super().__init__(max_entries=registry.settings["hyperapi.response_cache.max_entries"])


@implementer(IResponseStore)
class RedisStore:
    """Entries shared by every process, expiring in Redis itself (``SET ... EX``)."""

    def __init__(self, registry):
        import redis

        url = registry.settings["hyperapi.redis.url"]
        if not url:
            raise ConfigurationError(
                "hyperapi.response_cache.backend = redis needs hyperapi.redis.url"
            )
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.errors = (redis.RedisError,)
        self.prefix = registry.settings.get("hyperapi.response_cache.key_prefix", KEY_PREFIX)

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get(self.prefix + key)
        except self.errors as exc:
            log.warning("response cache: Redis get failed: %s", type(exc).__name__)
            return None

    def set(self, key: str, value: bytes, ttl: float) -> None:
        try:
            self.client.set(self.prefix + key, value, ex=max(1, int(ttl)))
        except self.errors as exc:
            log.warning("response cache: Redis set failed: %s", type(exc).__name__)

    def check(self) -> bool:
        """Whether Redis answers (for ``/__heartbeat__``)."""
        try:
            return bool(self.client.ping())
        except self.errors as exc:
            log.warning("response cache: Redis does not answer: %s", type(exc).__name__)
            return False


BUILTIN_STORES = {"memory": MemoryStore, "redis": RedisStore}


def parse_routes(entries: list[str]) -> dict[str, int]:
    """``["posts.collection=30", ...]`` -> ``{"posts.collection": 30}``."""
    timeouts = {}
    for entry in entries:
        route, sep, seconds = entry.partition("=")
        if not sep or not route or not seconds.strip().isdigit() or int(seconds) < 1:
            raise ConfigurationError(
                f"hyperapi.response_cache.routes: {entry!r} is not route=seconds (seconds >= 1)"
            )
        timeouts[route.strip()] = int(seconds)
    return timeouts


def pack(response: Response) -> bytes:
    headers = [
        [name, response.headers[name]] for name in STORED_HEADERS if name in response.headers
    ]
    return json.dumps(headers, separators=(",", ":")).encode() + b"\n" + response.body


def unpack(value: bytes) -> Response:
    head, _, body = value.partition(b"\n")
    response = Response(body=body, status=200, charset=None)
    del response.content_type
    for name, header in json.loads(head):
        response.headers[name] = header
    return response


class ResponseCache:
    """Responses of the configured routes, keyed so that no write needs to invalidate them."""

    def __init__(self, store, timeouts: dict[str, int]):
        self.store = store
        self.timeouts = timeouts

    def enabled(self, route: str) -> bool:
        return route in self.timeouts

    def key(self, request, route: str, etag: str) -> str:
        return digest(route, request.host_url, request.path_qs, etag)

    def get(self, request, route: str, etag: str | None) -> Response | None:
        """The stored response for this request whose ETag is ``etag``, or None."""
        if route not in self.timeouts or etag is None:
            return None
        value = self.store.get(self.key(request, route, etag))
        return None if value is None else unpack(value)

    def put(self, request, route: str, response: Response) -> None:
        """Store ``response`` if its route is cached and it is a 200 with an ETag."""
        timeout = self.timeouts.get(route)
        etag = response.headers.get("ETag")
        if timeout is None or response.status_code != 200 or etag is None:
            return
        self.store.set(self.key(request, route, etag), pack(response), timeout)


def includeme(config) -> None:
    settings = config.get_settings()
    timeouts = parse_routes(settings["hyperapi.response_cache.routes"])
    backend = settings["hyperapi.response_cache.backend"]
    store = config.maybe_dotted(BUILTIN_STORES.get(backend, backend))(config.registry)
    config.registry.response_cache = ResponseCache(store, timeouts)
    if hasattr(store, "check"):
        # /__heartbeat__ reports a shared store that does not answer.
        config.registry.heartbeats = getattr(config.registry, "heartbeats", {})
        config.registry.heartbeats["response_cache"] = store.check
