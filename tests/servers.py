"""Real server processes for the deployment tests: production.ini under gunicorn or pserve.

The commands are the README's deployment commands. Every process is started in a session of
its own and killed with its whole process group when the test ends, whatever happened; every
wait is bounded. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
import sqlalchemy as sa

from tests.conftest import POSTGRESQL_URL, REDIS_PREFIX, ROOT

BIN = os.path.dirname(sys.executable)
PRODUCTION_INI = os.path.join(ROOT, "production.ini")
SECRETS = {"HYPERAPI_SECRET": "s" * 40, "HYPERAPI_AUTH_TOKEN_SECRETS": "t" * 40}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment production.ini reads, and nothing else from this test run's.

    Redis keys get a prefix of their own, so that concurrent runs sharing one Redis do not
    count against each other's rate limits or read each other's cached responses.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERAPI_")}
    prefix = f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}"
    env.update(
        HYPERAPI_DATABASE_URL=database_url,
        HYPERAPI_REDIS_URL=redis_url,
        HYPERAPI_RATELIMIT_STORAGE_URL=redis_url,
        HYPERAPI_RATELIMIT_KEY_PREFIX=prefix,
        HYPERAPI_RESPONSE_CACHE_KEY_PREFIX=f"{prefix}:response:",
        **SECRETS,
    )
    env.update(extra)
    return env


def gunicorn(port: int, workers: int = 2) -> list[str]:
    """The README's gunicorn command: several workers, threads in each."""
    return [
        os.path.join(BIN, "gunicorn"),
        "--paste",
        PRODUCTION_INI,
        "-w",
        str(workers),
        "-k",
        "gthread",
        "--threads",
        "8",
        "-b",
        f"127.0.0.1:{port}",
    ]


def pserve(port: int, directory: str) -> list[str]:
    """The README's pserve command (waitress), with production.ini's address set to ``port``.

    production.ini is copied into ``directory`` with only its ``listen`` line changed, as an
    operator would edit it: pserve's ``name=value`` arguments cannot override a value the
    file itself sets.
    """
    with open(PRODUCTION_INI) as ini:
        text = ini.read()
    listen = "listen = 127.0.0.1:6543\n"
    assert text.count(listen) == 1, "production.ini's [server:main] listen line moved"
    path = os.path.join(directory, "production.ini")
    with open(path, "w") as copy:
        copy.write(text.replace(listen, f"listen = 127.0.0.1:{port}\n"))
    return [os.path.join(BIN, "pserve"), path]


def initialize(env: dict[str, str]) -> None:
    """The README's first step: migrate the database production.ini names."""
    subprocess.run(
        [os.path.join(BIN, "hyperapi-initializedb"), PRODUCTION_INI],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextmanager
def fresh_database() -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped afterwards."""
    admin = sa.create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    name = f"hyperapi_deploy_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.engine.make_url(POSTGRESQL_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def client() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: 127.0.0.1 directly
    return session


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def workers(self) -> set[int]:
        """The ids of the processes this server's process started (gunicorn's workers)."""
        children = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
                        ppid = int(stat.read().rpartition(")")[2].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if ppid == self.pid:
                    children.add(int(entry))
        return children


@contextmanager
def serving(
    command: list[str], env: dict[str, str], port: int, timeout: float = 30
) -> Iterator[Server]:
    """Run ``command`` until the block ends; yields it once it answers on ``port``."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until_serving(process, base, log, timeout)
            yield Server(base, process.pid)
        finally:
            stop(process)


def wait_until_serving(process, base: str, log, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with client() as session:
        while True:
            try:
                if session.get(base + "/__lbheartbeat__", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or listening while its workers still boot
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                output = log.read().decode(errors="replace")[-4000:]
                raise AssertionError(f"{process.args[0]} did not serve {base}:\n{output}")
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL whatever of it lingers."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
