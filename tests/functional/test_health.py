"""The operations endpoints: liveness, readiness with bounded checks, version."""

from __future__ import annotations

import threading
import time
from importlib.metadata import version

import pytest
from webtest import TestApp

HOST = {"HTTP_HOST": "api.example.com"}


def test_lbheartbeat_answers_without_asking_any_backend(testapp):
    assert testapp.get("/__lbheartbeat__").json == {}


def test_version_names_what_runs(testapp):
    assert testapp.get("/__version__").json == {"name": "hyperapi", "version": version("hyperapi")}


def test_heartbeat_reports_the_database_and_every_configured_redis(testapp, backend):
    expected = {"database": True}
    if backend == "postgresql":  # the suite's PostgreSQL leg keeps every store in Redis
        expected.update(ratelimit=True, revocations=True, response_cache=True)
    response = testapp.get("/__heartbeat__")
    assert response.json == expected
    assert "RateLimit" not in response.headers  # exempt: probes do not spend a quota


@pytest.fixture
def probed(app_factory, clean):
    """An app whose heartbeat waits 0.3 s, and a way to add checks to it."""
    app = app_factory(**{"hyperapi.heartbeat.timeout": "0.3"})
    release = threading.Event()
    yield TestApp(app, extra_environ=HOST), app.registry.heartbeats, release
    release.set()


def test_a_backend_that_hangs_is_down_after_the_timeout_not_a_hung_probe(probed):
    client, heartbeats, release = probed
    heartbeats["slow"] = lambda: release.wait(10)
    started = time.monotonic()
    response = client.get("/__heartbeat__", status=503)
    assert time.monotonic() - started < 2
    assert response.json["slow"] is False and response.json["database"] is True


def test_a_check_that_raises_or_says_no_makes_it_503_and_names_it(probed, caplog):
    client, heartbeats, _ = probed

    def broken():
        raise ConnectionError("refused")

    heartbeats["broken"] = broken
    heartbeats["no"] = lambda: False
    response = client.get("/__heartbeat__", status=503)
    assert response.json["broken"] is False and response.json["no"] is False
    assert response.content_type == "application/json"  # a report, not a problem
    assert "heartbeat: broken failed" in caplog.text


def test_an_unreachable_database_makes_it_503(app_factory, backend, tmp_path):
    url = (
        "postgresql+psycopg://nobody@127.0.0.1:1/none"
        if backend == "postgresql"
        else f"sqlite:///{tmp_path}/missing/dir/db.sqlite"
    )
    client = TestApp(app_factory(**{"sqlalchemy.url": url}), extra_environ=HOST)
    assert client.get("/__heartbeat__", status=503).json["database"] is False


def test_unreachable_redis_stores_are_each_reported(app_factory, clean):
    dead = "redis://127.0.0.1:1/0"
    app = app_factory(
        **{
            "hyperapi.redis.url": dead,
            "hyperapi.auth.revocations": "redis",
            "hyperapi.response_cache.backend": "redis",
            "hyperapi.ratelimit.storage_url": dead,
        }
    )
    response = TestApp(app, extra_environ=HOST).get("/__heartbeat__", status=503)
    assert response.json == {
        "database": True,
        "ratelimit": False,
        "revocations": False,
        "response_cache": False,
    }
