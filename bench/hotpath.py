"""Profile hyperapi's read path in process: no server, no wrk, seconds per try.

    python bench/hotpath.py                         # time every case on SQLite
    python bench/hotpath.py --backend postgresql    # on 127.0.0.1:5432 (a scratch database)
    python bench/hotpath.py --profile item-304      # cProfile one case, top entries
    python bench/hotpath.py --requests 5000 --sort tottime

Builds the application through PasteDeploy from a generated ini (production settings, as
bench/run.py serves it), migrates a scratch database with ``hyperapi-initializedb``, creates
two users, takes a Bearer token with HTTP Basic, then calls the WSGI application directly
(no HTTP, no WebTest) N times per case and prints microseconds per request. Timings are
the best of a few repeats, so that other work on the machine disturbs them less; wrk
against gunicorn (bench/run.py) remains the measure that counts. The cases:

- ``lbheartbeat``: ``GET /__lbheartbeat__``, no authentication, no database: the floor;
- ``item-bearer``: ``GET /api/v1/users/2`` with a Bearer token (a full 200);
- ``item-304``: the same with ``If-None-Match`` set to the current ETag;
- ``item-basic``: the same GET with HTTP Basic (the verification cache answers);
- ``collection``: ``GET /api/v1/users?per_page=25`` with a Bearer token.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import pstats
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import LOCALHOST, SERVERS, bin_path, write_ini  # noqa: E402 - bench/ is no package

POSTGRESQL_ADMIN = f"postgresql+psycopg://postgres@{LOCALHOST}:5432/postgres"
#: For this run only, like bench/run.py's.
PASSWORD = secrets.token_urlsafe(16)
SECRET = secrets.token_urlsafe(48)


def call(app, path: str, headers: dict[str, str], method: str = "GET", body: bytes = b""):
    """One request straight through the WSGI callable: (status, headers, body)."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path.partition("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_NAME": LOCALHOST,
        "SERVER_PORT": "8000",
        "HTTP_HOST": f"{LOCALHOST}:8000",
        "REMOTE_ADDR": LOCALHOST,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = status
        seen["headers"] = dict(response_headers)

    chunks = app(environ, start_response)
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return seen["status"], seen["headers"], data


def database(backend: str, workdir: Path) -> tuple[str, object]:
    """A scratch database URL and a function that drops it."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'profile.sqlite'}", lambda: None
    import sqlalchemy as sa

    name = f"hyperapi_profile_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRESQL_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return sa.make_url(POSTGRESQL_ADMIN).set(database=name).render_as_string(False), drop


def build(url: str, workdir: Path, extra: dict[str, str]):
    from pyramid.paster import get_app

    ini = workdir / "profile.ini"
    settings = {
        "sqlalchemy.url": url,
        "hyperapi.secret": SECRET,
        "hyperapi.auth.token_secrets": SECRET + "-tokens",
        **extra,
    }
    write_ini(ini, SERVERS["hyperapi"], settings)
    subprocess.run([bin_path("hyperapi-initializedb"), str(ini)], check=True)
    return get_app(str(ini), "main")


def create_users(app) -> None:
    from hyperapi.models import User
    from hyperapi.models.collections import bump
    from hyperapi.security.passwords import Passwords

    registry = app.registry
    hasher = Passwords.from_settings(registry.settings)
    with registry.database.write_sessions() as session, session.begin():
        for name in ("user1", "user2"):
            session.add(
                User(
                    username=name,
                    email=f"{name}@example.com",
                    password_hash=hasher.hash(PASSWORD),
                    about_me="",
                )
            )
        session.flush()
        bump(session, "users", +2)


def cases(app) -> dict[str, tuple[str, dict[str, str], str]]:
    basic = "Basic " + base64.b64encode(f"user1:{PASSWORD}".encode()).decode()
    status, _, body = call(app, "/api/v1/tokens", {"Authorization": basic}, method="POST")
    assert status.startswith("200"), (status, body)
    import json

    bearer = {"Authorization": "Bearer " + json.loads(body)["token"]}
    status, headers, _ = call(app, "/api/v1/users/2", bearer)
    assert status.startswith("200"), status
    return {
        "lbheartbeat": ("/__lbheartbeat__", {}, "200"),
        "item-bearer": ("/api/v1/users/2", bearer, "200"),
        "item-304": ("/api/v1/users/2", {**bearer, "If-None-Match": headers["ETag"]}, "304"),
        "item-basic": ("/api/v1/users/2", {"Authorization": basic}, "200"),
        "collection": ("/api/v1/users?per_page=25", bearer, "200"),
    }


def timed(app, case, requests: int, repeats: int) -> float:
    path, headers, expected = case
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(requests):
            status, _, _ = call(app, path, headers)
        best = min(best, time.perf_counter() - started)
        assert status.startswith(expected), (path, status)
    return best / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", metavar="CASE", help="cProfile this case instead")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key")
    parser.add_argument("--callers", metavar="FUNCTION", help="with --profile: who calls it")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument(
        "--by-package",
        action="store_true",
        help="with --profile: own time summed per top-level package (pyramid, sqlalchemy, ...)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="an extra setting"
    )
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory(prefix="hyperapi-profile-") as tmp:
        workdir = Path(tmp)
        url, drop = database(args.backend, workdir)
        try:
            app = build(url, workdir, extra)
            create_users(app)
            known = cases(app)
            if args.profile:
                case = known[args.profile]
                timed(app, case, 200, 1)  # warm up
                profiler = cProfile.Profile()
                profiler.enable()
                timed(app, case, args.requests, 1)
                profiler.disable()
                stats = pstats.Stats(profiler)
                if args.by_package:
                    print_by_package(stats, args.requests)
                else:
                    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
                    if args.callers:
                        stats.print_callers(args.callers)
            else:
                for name, case in known.items():
                    timed(app, case, 200, 1)  # warm up
                    micros = timed(app, case, args.requests, args.repeats)
                    print(f"{args.backend:<10} {name:<12} {micros:8.0f} us/request")
            app.registry.database.dispose()
        finally:
            drop()
    return 0


def package_of(filename: str) -> str:
    """``sqlalchemy`` for .../site-packages/sqlalchemy/engine/base.py; ``hyperapi/x.py``."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    if "hyperapi" in parts:
        return "/".join(parts[parts.index("hyperapi") :])
    return "python" if filename.startswith(("~", "<")) else "stdlib"


def print_by_package(stats: pstats.Stats, requests: int) -> None:
    """Own time per package, in microseconds per request (profiled, so inflated)."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        package = package_of(filename)
        totals[package] = totals.get(package, 0.0) + tottime
    for package, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{seconds / requests * 1e6:8.1f} us  {package}")


if __name__ == "__main__":
    sys.exit(main())
