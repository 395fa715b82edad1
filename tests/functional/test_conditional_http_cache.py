"""A real HTTP caching client (requests + CacheControl) against a real server.

The server is waitress (WebTest's StopableWSGIServer) on 127.0.0.1 and a free port,
serving the application built for this backend. The client stores what it may, revalidates
with the ETag, is answered 304, and receives the new body after a change.
"""

from __future__ import annotations

import pytest
import requests
from cachecontrol import CacheControl
from cachecontrol.cache import DictCache
from webtest.http import StopableWSGIServer


class Wire:
    """WSGI middleware that remembers the status of every response the server sent."""

    def __init__(self, app):
        self.app = app
        self.statuses: list[int] = []

    def __call__(self, environ, start_response):
        def record(status, headers, exc_info=None):
            self.statuses.append(int(status.split()[0]))
            return start_response(status, headers, exc_info)

        return self.app(environ, record)


@pytest.fixture
def wire(app):
    return Wire(app)


@pytest.fixture
def server(wire, clean):
    httpd = StopableWSGIServer.create(wire, host="127.0.0.1", port=0)
    try:
        yield f"http://127.0.0.1:{httpd.effective_port}"
    finally:
        httpd.shutdown()


def test_a_caching_client_revalidates_gets_304_and_sees_changes(server, wire, alice):
    cache = DictCache()
    client = CacheControl(requests.Session(), cache=cache)
    client.auth = (alice["username"], "correct horse battery")
    created = client.post(f"{server}/api/v1/posts", json={"body": "first"})
    assert created.status_code == 201
    url = f"{server}/api/v1/posts/{created.json()['id']}"

    first = client.get(url)
    assert first.json()["body"] == "first"
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert cache.data, "the client stored the representation"

    again = client.get(url)
    assert again.from_cache and again.json()["body"] == "first"
    assert wire.statuses[-1] == 304  # revalidated over the wire, served from the store

    changed = client.put(url, json={"body": "second"}, headers={"If-Match": first.headers["ETag"]})
    assert changed.status_code == 200

    fresh = client.get(url)
    assert wire.statuses[-1] == 200
    assert fresh.json()["body"] == "second"
    assert fresh.headers["ETag"] == changed.headers["ETag"]
    assert client.get(url).from_cache and wire.statuses[-1] == 304
