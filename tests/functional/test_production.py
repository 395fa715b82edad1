"""production.ini serves the API under gunicorn, configured only from the environment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT

GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERAPI_")}
    env.update(
        HYPERAPI_DATABASE_URL=database_url,
        HYPERAPI_SECRET="s" * 40,
        HYPERAPI_AUTH_TOKEN_SECRETS="t" * 40,
    )
    return env


def get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return response.status, json.loads(response.read())


@pytest.fixture
def gunicorn(database_url):
    port = free_port()
    process = subprocess.Popen(
        [
            GUNICORN,
            "--paste",
            os.path.join(ROOT, "production.ini"),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
        ],
        env=production_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                get(base + "/__lbheartbeat__")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.stderr.read().decode()) from None
                time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        process.stderr.close()


def test_gunicorn_serves_production_ini_from_environment_variables(gunicorn):
    status, entry = get(gunicorn + "/api/v1/")
    assert status == 200
    assert entry["_links"]["users"]["href"] == gunicorn + "/api/v1/users"
    assert get(gunicorn + "/__heartbeat__") == (200, {"database": True})


@pytest.mark.parametrize(
    "missing", ["HYPERAPI_DATABASE_URL", "HYPERAPI_SECRET", "HYPERAPI_AUTH_TOKEN_SECRETS"]
)
def test_production_refuses_to_start_without_its_environment(database_url, missing):
    env = production_env(database_url)
    del env[missing]
    code = "from pyramid.paster import get_app; import sys; get_app(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", code, os.path.join(ROOT, "production.ini")],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert b"ConfigurationError" in result.stderr
