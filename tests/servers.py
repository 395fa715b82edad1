"""Real hyperapi server processes for tests: the one harness that starts, reaches and stops them.

Two ways to configure one: production.ini under the README's deployment commands (gunicorn
or pserve), configured from the environment (:func:`production_env`, :func:`serving`); or
gunicorn ``--paste`` of an ini generated from a test's settings (:func:`start_generated`).
Every process is started in a session of its own and killed with its whole process group
when the test ends, whatever happened; every wait is bounded. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import configparser
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import REDIS_PREFIX, ROOT

LOCALHOST = "127.0.0.1"
BIN = os.path.dirname(sys.executable)
PRODUCTION_INI = os.path.join(ROOT, "production.ini")
#: The secrets a production-environment server needs, from its environment.
SECRETS = {"HYPERAPI_SECRET": "s" * 40, "HYPERAPI_AUTH_TOKEN_SECRETS": "t" * 40}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.05):
    """Poll ``predicate`` until it returns something true; the time it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None


# -- configuration: environments, ini files, commands ---------------------------------------


def environment(**hyperapi: str) -> dict[str, str]:
    """This process's environment with ``hyperapi`` as its only HYPERAPI_* variables.

    The test run's own HYPERAPI_* variables are left out: a server reads only the
    configuration its test gives it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERAPI_")}
    env.update(hyperapi)
    return env


def production_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment production.ini reads.

    Redis keys get a prefix of their own, so that concurrent runs sharing one Redis do not
    count against each other's rate limits or read each other's cached responses.
    """
    prefix = f"{REDIS_PREFIX}-{uuid.uuid4().hex[:8]}"
    return environment(
        **{
            "HYPERAPI_DATABASE_URL": database_url,
            "HYPERAPI_REDIS_URL": redis_url,
            "HYPERAPI_RATELIMIT_STORAGE_URL": redis_url,
            "HYPERAPI_RATELIMIT_KEY_PREFIX": prefix,
            "HYPERAPI_RESPONSE_CACHE_KEY_PREFIX": f"{prefix}:response:",
            **SECRETS,
            **extra,
        }
    )


def write_ini(path: Path, settings: Mapping[str, str]) -> None:
    """An ini with the app's settings and logging that shows hyperapi's warnings."""
    config = configparser.ConfigParser(interpolation=None)
    config["app:main"] = {"use": "egg:hyperapi", **settings}
    config["loggers"] = {"keys": "root, hyperapi"}
    config["handlers"] = {"keys": "console"}
    config["formatters"] = {"keys": "generic"}
    config["logger_root"] = {"level": "WARNING", "handlers": "console"}
    config["logger_hyperapi"] = {"level": "INFO", "handlers": "", "qualname": "hyperapi"}
    config["handler_console"] = {
        "class": "StreamHandler",
        "args": "(sys.stderr,)",
        "level": "NOTSET",
        "formatter": "generic",
    }
    config["formatter_generic"] = {"format": "%(levelname)s [%(name)s] %(message)s"}
    with open(path, "w") as out:
        config.write(out)


def gunicorn(
    port: int, workers: int = 2, *, threads: int = 8, ini: str | Path = PRODUCTION_INI
) -> list[str]:
    """The README's gunicorn command: several workers, threads in each."""
    return [
        os.path.join(BIN, "gunicorn"),
        "--paste",
        str(ini),
        "-w",
        str(workers),
        "-k",
        "gthread",
        "--threads",
        str(threads),
        "-b",
        f"{LOCALHOST}:{port}",
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
        copy.write(text.replace(listen, f"listen = {LOCALHOST}:{port}\n"))
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


# -- the process ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Server:
    """A server process on ``port``, its output in ``workdir``/server.log."""

    process: subprocess.Popen
    port: int
    workdir: Path
    #: How many worker processes :func:`start` waited for (0: none).
    workers: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def worker_pids(self) -> list[int]:
        """The processes this server's process started (gunicorn's workers)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: object = None,
        timeout: float = 30,
    ) -> Reply:
        """One request on a new connection, exactly the headers given; an OSError when the
        connection fails (for a requests session, see :func:`client`)."""
        connection = http.client.HTTPConnection(LOCALHOST, self.port, timeout=timeout)
        try:
            headers = dict(headers or {})
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def serves(self) -> bool:
        try:
            return self.request("GET", "/__lbheartbeat__", timeout=5).status == 200
        except (OSError, http.client.HTTPException):
            return False  # not listening yet, or listening while its workers still boot

    def log(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL whatever of it lingers.

        SIGKILL goes to the group even when the master has exited: workers that outlived
        it are in the same group.
        """
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)


def start(
    command: list[str],
    env: dict[str, str],
    port: int,
    workdir: Path,
    *,
    workers: int = 0,
    timeout: float = 60,
) -> Server:
    """Start ``command`` in ``workdir``; return once it answers on ``port`` with ``workers``
    worker processes up. The caller stops it."""
    with open(workdir / "server.log", "wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, workdir, workers)
    try:
        deadline = time.monotonic() + timeout
        answered = wait_for(lambda: process.poll() is not None or server.serves(), timeout, 0.1)
        if answered is None or process.poll() is not None:
            output = server.log()[-4000:]
            raise AssertionError(f"{command[0]} did not serve {server.url}:\n{output}")
        wait_for(lambda: len(server.worker_pids()) >= workers, deadline - time.monotonic(), 0.1)
    except BaseException:
        server.stop()
        raise
    return server


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[Server]:
    """Run ``command`` until the block ends; yields it once it answers on ``port``."""
    with tempfile.TemporaryDirectory(prefix="hyperapi-server-") as workdir:
        server = start(command, env, port, Path(workdir))
        try:
            yield server
        finally:
            server.stop()


def start_generated(
    workdir: Path,
    settings: Mapping[str, str],
    *,
    environ: Mapping[str, str] | None = None,
    workers: int = 2,
    threads: int = 4,
) -> Server:
    """hyperapi under gunicorn on a free port, configured by an ini generated from ``settings``
    in ``workdir``; ``environ``: its HYPERAPI_* variables. The caller stops it."""
    ini = workdir / "server.ini"
    write_ini(ini, settings)
    port = free_port()
    command = gunicorn(port, workers, threads=threads, ini=ini)
    # A worker stuck on an unanswering backend must not hold up the stop for gunicorn's
    # default 30 s.
    command += ["--graceful-timeout", "5"]
    return start(command, environment(**(environ or {})), port, workdir, workers=workers)


def client() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: 127.0.0.1 directly
    return session
