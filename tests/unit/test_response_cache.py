"""The response cache's stores (one contract, every implementation) and its pieces."""

from __future__ import annotations

import types
import uuid

import pytest
from pyramid.response import Response

from hyperapi.resources.cache import (
    MemoryStore,
    RedisStore,
    ResponseCache,
    pack,
    parse_routes,
    unpack,
)
from hyperapi.settings import ConfigurationError


def registry(**settings):
    defaults = {"hyperapi.response_cache.max_entries": 2, "hyperapi.redis.url": ""}
    return types.SimpleNamespace(settings={**defaults, **settings})


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryStore(registry())
    url = request.getfixturevalue("redis_url")
    return RedisStore(registry(**{"hyperapi.redis.url": url}))


def test_a_store_returns_what_it_was_given_and_nothing_else(store):
    key = uuid.uuid4().hex
    assert store.get(key) is None
    store.set(key, b"\x00bytes\n", 60)
    assert store.get(key) == b"\x00bytes\n"
    assert store.get(key + "x") is None


def test_memory_store_is_bounded_and_expires():
    clock = [0.0]
    store = MemoryStore(registry())
    store.clock = lambda: clock[0]
    for key in ("a", "b", "c"):
        store.set(key, b"v", 10)
    assert store.get("a") is None and store.get("c") == b"v"  # two entries at most
    clock[0] = 11
    assert store.get("c") is None


def test_an_unreachable_redis_is_a_miss_not_an_error():
    store = RedisStore(registry(**{"hyperapi.redis.url": "redis://127.0.0.1:1/0"}))
    store.set("k", b"v", 60)
    assert store.get("k") is None


def test_redis_store_needs_a_url():
    with pytest.raises(ConfigurationError):
        RedisStore(registry())


def test_a_packed_response_comes_back_with_its_validators_and_links():
    response = Response(body=b'{"items":[]}', content_type="application/hal+json", charset=None)
    response.headers.update({"ETag": '"c1"', "Link": '<http://x/>; rel="self"', "X-Other": "no"})
    restored = unpack(pack(response))
    assert restored.body == response.body
    assert restored.content_type == "application/hal+json"
    assert restored.headers["ETag"] == '"c1"' and "X-Other" not in restored.headers


def test_only_200s_with_an_etag_on_cached_routes_are_stored():
    store = MemoryStore(registry(**{"hyperapi.response_cache.max_entries": 10}))
    cache = ResponseCache(store, {"posts.collection": 30})
    request = types.SimpleNamespace(host_url="http://h", path_qs="/api/v1/posts")
    for status, etag, route in (
        (404, '"e"', "posts.collection"),
        (200, None, "posts.collection"),
        (200, '"e"', "users.collection"),
    ):
        response = Response(status=status, body=b"x")
        if etag:
            response.headers["ETag"] = etag
        cache.put(request, route, response)
    assert store.entries == {}
    ok = Response(body=b"x", headers={"ETag": '"e"'})
    cache.put(request, "posts.collection", ok)
    assert cache.get(request, "posts.collection", '"e"').body == b"x"
    assert cache.get(request, "posts.collection", '"other"') is None


@pytest.mark.parametrize("entry", ["posts.collection", "=30", "posts.collection=0", "x=y"])
def test_route_timeouts_must_be_route_equals_seconds(entry):
    with pytest.raises(ConfigurationError):
        parse_routes([entry])


def test_route_timeouts_parse():
    assert parse_routes(["posts.collection=30", "users.item=5"]) == {
        "posts.collection": 30,
        "users.item": 5,
    }
