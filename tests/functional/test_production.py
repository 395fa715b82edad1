"""production.ini, deployed as the README says: PostgreSQL and Redis from the environment.

Each test follows the README's deployment section on a fresh PostgreSQL database:
``hyperapi-initializedb production.ini``, then ``gunicorn --paste production.ini`` with two
workers, or ``pserve production.ini``.
"""

from __future__ import annotations

import configparser
import subprocess
import sys

import pytest

from tests import servers
from tests.conftest import scratch_database

pytestmark = pytest.mark.slow

# Revocations are in PostgreSQL (production.ini): the database answers for them.
ALL_UP = {"database": True, "ratelimit": True, "response_cache": True}


@pytest.fixture(scope="module")
def deployment(postgresql_url, redis_url) -> dict[str, str]:
    """The environment of a fresh deployment, its database initialized as documented."""
    with scratch_database("hyperapi_deploy") as database_url:
        env = servers.production_env(database_url, redis_url)
        servers.initialize(env)
        yield env


def command(name: str, port: int, tmp_path) -> list[str]:
    return servers.gunicorn(port) if name == "gunicorn" else servers.pserve(port, str(tmp_path))


@pytest.mark.parametrize("name", ["gunicorn", "pserve"])
def test_the_documented_commands_serve_production_ini_on_postgresql_and_redis(
    deployment, name, tmp_path
):
    port = servers.free_port()
    serving = servers.serving(command(name, port, tmp_path), deployment, port)
    with serving as server, servers.client() as http:
        entry = http.get(server.url + "/api/v1/", timeout=10)
        beat = http.get(server.url + "/__heartbeat__", timeout=10)
        version = http.get(server.url + "/__version__", timeout=10)
        users = http.get(server.url + "/api/v1/users", timeout=10)
    assert entry.status_code == 200
    assert entry.json()["_links"]["users"]["href"] == server.url + "/api/v1/users"
    # Counted in Redis: the policy and the quota left are announced.
    assert entry.headers["RateLimit-Policy"] == '"default";q=300;w=60'
    assert entry.headers["RateLimit"].startswith('"default";r=')
    assert (beat.status_code, beat.json()) == (200, ALL_UP)
    assert version.json()["name"] == "hyperapi"
    assert users.status_code == 401
    assert users.headers["Content-Type"] == "application/problem+json"


def test_gunicorn_runs_the_two_workers_the_readme_asks_for(deployment):
    port = servers.free_port()
    with servers.serving(servers.gunicorn(port, workers=2), deployment, port) as server:
        assert len(server.worker_pids()) == 2


def test_heartbeat_is_503_within_its_timeout_when_redis_is_down(deployment, tmp_path):
    env = {
        **deployment,
        "HYPERAPI_REDIS_URL": "redis://127.0.0.1:1/0",
        "HYPERAPI_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:1/0",
    }
    port = servers.free_port()
    serving = servers.serving(servers.pserve(port, str(tmp_path)), env, port)
    with serving as server, servers.client() as http:
        # The rate limiter fails open: the API itself still answers.
        entry = http.get(server.url + "/api/v1/", timeout=10)
        beat = http.get(server.url + "/__heartbeat__", timeout=10)
    assert entry.status_code == 200
    assert beat.status_code == 503
    assert beat.json() == {"database": True, "ratelimit": False, "response_cache": False}
    assert beat.elapsed.total_seconds() < 5


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("HYPERAPI_DATABASE_URL", "HYPERAPI_DATABASE_URL"),
        ("HYPERAPI_SECRET", "HYPERAPI_SECRET"),
        ("HYPERAPI_AUTH_TOKEN_SECRETS", "HYPERAPI_AUTH_TOKEN_SECRETS"),
        ("HYPERAPI_REDIS_URL", "hyperapi.redis.url"),
        ("HYPERAPI_RATELIMIT_STORAGE_URL", "HYPERAPI_RATELIMIT_STORAGE_URL"),
    ],
)
def test_production_refuses_to_start_without_its_environment(missing, message):
    env = servers.production_env("postgresql+psycopg://nobody@127.0.0.1:1/none", "redis://x")
    del env[missing]
    code = "from pyramid.paster import get_app; import sys; get_app(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", code, servers.PRODUCTION_INI],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert b"ConfigurationError" in result.stderr
    assert message.encode() in result.stderr


def test_production_ini_holds_no_secret_and_no_address():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(servers.PRODUCTION_INI)
    app = ini["app:main"]
    for name in ("sqlalchemy.url", "hyperapi.redis.url", "hyperapi.ratelimit.storage_url"):
        assert app[name] == "", name
    assert not [name for name in app if "secret" in name]
    assert (app["sqlalchemy.pool_size"], app["sqlalchemy.pool_pre_ping"]) == ("10", "false")
