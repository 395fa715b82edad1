"""Load benchmarks of hyperapi against real servers, with their results written down.

    python bench/run.py                      # everything: about 10-15 minutes
    python bench/run.py --quick              # one short round on a smaller table
    python bench/run.py --only item-get-bearer item-get-basic

Prepares an SQLite file and, when it answers on 127.0.0.1:5432, a PostgreSQL database
(``hyperapi_bench``, dropped and created again); starts every server a selected scenario
needs under gunicorn through PasteDeploy (``gunicorn --paste``), as production does; drives
each with wrk, interleaving the servers and repeating rounds so that medians stay comparable
on a small, noisy machine; writes bench/RESULTS.md and bench/results.png; and stops
everything it started, whatever happens. Every server listens on 127.0.0.1 only, and wrk
is only ever pointed there. See bench/README.md, which also says how to add a scenario.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from wrk_output import WrkResult, parse  # noqa: E402 - bench/ is not a package

LOCALHOST = "127.0.0.1"
POSTGRESQL_ADMIN_URL = f"postgresql+psycopg://postgres@{LOCALHOST}:5432/postgres"
POSTGRESQL_DATABASE = "hyperapi_bench"
BENCH_USER, OTHER_USER, DEMO_PASSWORD = "user1", 2, "demo-password"

# -- what is compared -------------------------------------------------------------------

#: The settings of every hyperapi server below.
HYPERAPI = {
    "hyperapi.environment": "production",
    "hyperapi.debug": "false",
    # The limiter runs and counts every request, as in production, but with a limit that no
    # run reaches: a 429 is not what these scenarios measure.
    "hyperapi.ratelimit.default": "1000000000/minute",
}

#: The servers, by name. ``app`` is the PasteDeploy ``use =`` line; ``database`` says
#: whether it runs once per backend; ``settings`` go into its [app:main] section; an
#: optional ``gunicorn`` list of options overrides the command line's (a worker class).
SERVERS: dict[str, dict] = {
    "hyperapi": {
        "title": "hyperapi (full stack)",
        "app": "egg:hyperapi",
        "database": True,
        "settings": HYPERAPI,
    },
    "hyperapi-cached": {
        "title": "hyperapi with the response cache on the collections (memory, 60 s)",
        "app": "egg:hyperapi",
        "database": True,
        "settings": {
            **HYPERAPI,
            "hyperapi.response_cache.routes": "students.collection=60 users.collection=60",
        },
    },
    "hyperapi-redis": {
        "title": "hyperapi, rate limits counted in Redis as production.ini does",
        "app": "egg:hyperapi",
        "database": True,
        "settings": {
            **HYPERAPI,
            "hyperapi.ratelimit.storage_url": f"redis://{LOCALHOST}:6379/13",
            # This run's counters only (they expire with their one-minute window).
            "hyperapi.ratelimit.key_prefix": f"hyperapi-bench-{secrets.token_hex(4)}",
        },
    },
    "flask": {
        "title": "Flask + Flask-SQLAlchemy",
        "app": "call:flask_app:main",
        "database": True,
        "settings": {},
    },
    "cornice": {
        "title": "bare Cornice, fixed JSON",
        "app": "call:bare_cornice:main",
        "database": False,
        "settings": {},
    },
}

BEARER = "header=Authorization: Bearer {token}"
BASIC = "header=Authorization: Basic {basic}"

#: The scenarios, in the order they run within a round. Each runs on every server it names
#: (the first is the subject, the others baselines) and, for servers with a database, on
#: every backend. ``args`` are passed to the wrk script after ``--``, formatted with the
#: fixtures prepared on each backend: {token} {basic} {other_user} {other_user_etag} (as
#: user1 sees it) {deep_path} {put_paths}.
#: ``versus`` lists ratios to show: a server name (same scenario, same backend) or another
#: scenario's name (same server, same backend). ``goals`` are the targets the issues set,
#: each a ratio ``metric(subject) / metric(versus)`` that must be ``at_least`` or ``at_most``.
#: ``drain`` is seconds to wait between the warm-up and the measured run, for a write
#: scenario whose warm-up's last requests would otherwise race the measured run's first.
SCENARIOS: list[dict] = [
    {
        "name": "item-get-bearer",
        "title": "Item GET, Bearer token",
        "servers": ["hyperapi", "flask", "cornice"],
        "script": "request.lua",
        "args": ["path=/api/v1/users/{other_user}", BEARER],
        "versus": ["flask", "cornice"],
        "goals": [
            {"versus": "flask", "metric": "rps", "at_least": 1.3, "issue": 7},
            {"versus": "cornice", "metric": "rps", "at_least": 0.6, "issue": 7},
        ],
    },
    {
        "name": "item-get-basic",
        "title": "Item GET, HTTP Basic (same user every time: verification cache)",
        "servers": ["hyperapi"],
        "script": "request.lua",
        "args": ["path=/api/v1/users/{other_user}", BASIC],
        "versus": ["item-get-bearer"],
        "goals": [{"versus": "item-get-bearer", "metric": "rps", "at_least": 0.8, "issue": 3}],
    },
    {
        "name": "item-get-304",
        "title": "Conditional item GET answered 304 (If-None-Match: the current ETag)",
        # hyperapi-redis: what production.ini's counters in Redis add (not a goal).
        "servers": ["hyperapi", "cornice", "hyperapi-redis"],
        "script": "request.lua",
        "args": [
            "path=/api/v1/users/{other_user}",
            BEARER,
            "header=If-None-Match: {other_user_etag}",
        ],
        "versus": ["cornice", "item-get-bearer"],
        "goals": [{"versus": "cornice", "metric": "rps", "at_least": 0.85, "issue": 4}],
    },
    {
        "name": "collection-page-cached",
        "title": "Collection GET, 25 items, with and without the response cache",
        "servers": ["hyperapi-cached", "hyperapi"],
        "script": "request.lua",
        "args": ["path=/api/v1/students?per_page=25", BEARER],
        "versus": ["hyperapi"],
    },
    {
        "name": "collection-page-1",
        "title": "Collection GET, page 1 of the big table",
        "servers": ["hyperapi"],
        "script": "request.lua",
        "args": ["path=/api/v1/students?per_page=25", BEARER],
    },
    {
        "name": "deep-page-next",
        "title": "Deep pages: following next cursors from 90% into the big table",
        "servers": ["hyperapi"],
        "script": "follow_next.lua",
        "args": ["path={deep_path}", BEARER],
        "versus": ["collection-page-1"],
        "goals": [
            {"versus": "collection-page-1", "metric": "p50", "at_most": 1.3, "issue": 7},
        ],
    },
    {
        "name": "post-create",
        "title": "POST (create a post)",
        "servers": ["hyperapi"],
        "script": "request.lua",
        "args": [
            "method=POST",
            "path=/api/v1/posts",
            BEARER,
            "header=Content-Type: application/json",
            'body={{"body": "a post written by the benchmark"}}',
        ],
    },
    {
        "name": "put-if-match",
        "title": "PUT with If-Match (one item per connection, no lost races)",
        "servers": ["hyperapi"],
        "script": "put_if_match.lua",
        # One connection per wrk thread, each thread on its own post (see the script).
        # The warm-up's last PUTs may commit after the measured run's first GET read the
        # ETag: that PUT then gets a 412 (seen once a run or so, on both backends).
        "drain": 2,
        "threads": 2,
        "connections": 2,
        "args": ["{put_paths}", BEARER, 'body={{"body": "edited by the benchmark"}}'],
    },
]

# -- options ----------------------------------------------------------------------------


@dataclass
class Options:
    rounds: int
    duration: int
    warmup: int
    threads: int
    connections: int
    workers: int
    worker_class: str
    gthreads: int
    worker_connections: int
    users: int
    posts: int
    students: int
    backends: list[str]
    only: list[str]
    keep: bool
    command: str


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 100,000 rows")
    parser.add_argument("--only", nargs="+", default=[], metavar="SCENARIO")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, help="seconds per measured run (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    # gthread: measured faster than sync here (see README.md), and keeps connections alive.
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--gthreads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--worker-connections",
        type=int,
        help="connections one gthread worker holds at once (default: the most connections "
        "a scenario opens, split evenly between the workers; see README.md)",
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=10000)
    parser.add_argument("--students", type=int, help="rows in the big table (1,000,000)")
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and ini files")
    args = parser.parse_args(argv)
    unknown = set(args.only) - {s["name"] for s in SCENARIOS}
    if unknown:
        parser.error(f"no such scenario: {', '.join(sorted(unknown))}")
    shown = ["python", "bench/run.py", *(sys.argv[1:] if argv is None else argv)]
    return Options(
        rounds=args.rounds or (1 if args.quick else 3),
        duration=args.duration or (2 if args.quick else 5),
        warmup=args.warmup,
        threads=args.threads,
        connections=args.connections,
        workers=args.workers,
        worker_class=args.worker_class,
        gthreads=args.gthreads,
        worker_connections=args.worker_connections
        or even_share(
            max(args.connections, *(s.get("connections", 0) for s in SCENARIOS)), args.workers
        ),
        users=args.users,
        posts=args.posts,
        students=args.students or (100_000 if args.quick else 1_000_000),
        backends=args.backends,
        only=args.only,
        keep=args.keep,
        command=shlex.join(shown),
    )


def even_share(connections: int, workers: int) -> int:
    """Connections per worker that leave no worker idle while another holds them all."""
    return max(1, math.ceil(connections / workers))


def check_tools() -> None:
    """Install nothing; say what is missing and how to get it."""
    missing = []
    if shutil.which("wrk") is None:
        missing.append("wrk (Debian/Ubuntu: apt-get install -y wrk)")
    for module, package in (
        ("gunicorn", "gunicorn"),
        ("flask", "flask"),
        ("flask_sqlalchemy", "flask-sqlalchemy"),
        ("matplotlib", "matplotlib"),
    ):
        if importlib.util.find_spec(module) is None:
            missing.append(f'{package} (pip install -e ".[bench]")')
    if missing:
        raise SystemExit("bench/run.py needs: " + "; ".join(missing))


# -- processes --------------------------------------------------------------------------


class Processes:
    """Every long-running process started here, each in its own process group."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: Path, **kwargs) -> subprocess.Popen:
        with open(log, "wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
            )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            stop_group(process)
        self.started.clear()


def stop_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group (gunicorn's master and workers), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return probe.getsockname()[1]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kwargs)


def bin_path(name: str) -> str:
    return str(Path(sys.executable).parent / name)


# -- databases --------------------------------------------------------------------------


def postgresql_reachable() -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRESQL_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except Exception as exc:  # any failure means "not here"; say which
        print(f"PostgreSQL is not reachable on {LOCALHOST}:5432 ({exc.__class__.__name__})")
        return False
    finally:
        engine.dispose()


def recreate_postgresql(drop_only: bool = False) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRESQL_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{POSTGRESQL_DATABASE}" WITH (FORCE)'
            )
            if not drop_only:
                connection.exec_driver_sql(f'CREATE DATABASE "{POSTGRESQL_DATABASE}"')
    finally:
        engine.dispose()
    return (
        sa.make_url(POSTGRESQL_ADMIN_URL)
        .set(database=POSTGRESQL_DATABASE)
        .render_as_string(hide_password=False)
    )


def analyze(url: str) -> None:
    """Give the planner statistics, as autovacuum would have on a database in service."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def write_ini(path: Path, server: dict, settings: dict[str, str]) -> None:
    """A PasteDeploy ini like production.ini: the app, alembic for hyperapi, quiet logging."""
    lines = ["[app:main]", f"use = {server['app']}"]
    lines += [f"{name} = {value}" for name, value in {**server["settings"], **settings}.items()]
    lines += [
        "",
        "[alembic]",
        "script_location = hyperapi:alembic",
        "",
        "[loggers]",
        "keys = root",
        "[handlers]",
        "keys = console",
        "[formatters]",
        "keys = generic",
        "[logger_root]",
        "level = WARN",
        "handlers = console",
        "[handler_console]",
        "class = StreamHandler",
        "args = (sys.stderr,)",
        "level = NOTSET",
        "formatter = generic",
        "[formatter_generic]",
        "format = %%(asctime)s %%(levelname)-5.5s [%%(name)s] %%(message)s",
        "",
    ]
    path.write_text("\n".join(lines))


def prepare_database(backend: str, workdir: Path, options: Options) -> str:
    """Create, migrate and fill one backend's database; return its URL."""
    sqlite = f"sqlite:///{workdir / 'bench.sqlite'}"
    url = sqlite if backend == "sqlite" else recreate_postgresql()
    ini = workdir / f"load-{backend}.ini"
    write_ini(ini, SERVERS["hyperapi"], app_settings("hyperapi", url))
    print(f"[{backend}] migrating and loading {options.students:,} students ...", flush=True)
    started = time.monotonic()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    run([bin_path("hyperapi-initializedb"), str(ini)], **quiet)
    run(
        [
            bin_path("hyperapi-load-demo"),
            str(ini),
            f"--users={options.users}",
            f"--posts={options.posts}",
            f"--students={options.students}",
            "--classes=10",
            "--registrations=0",
        ],
        **quiet,
    )
    analyze(url)
    print(f"[{backend}] ready in {time.monotonic() - started:.0f} s", flush=True)
    return url


#: Secrets for this run only: the servers are torn down with them.
RUN_SECRET = secrets.token_urlsafe(48)


def app_settings(server: str, url: str | None) -> dict[str, str]:
    settings = {}
    if url is not None:
        settings["sqlalchemy.url"] = url
    if SERVERS[server]["app"] == "egg:hyperapi":
        settings["hyperapi.secret"] = RUN_SECRET
        settings["hyperapi.auth.token_secrets"] = RUN_SECRET + "-tokens"
        if url is not None and url.startswith("postgresql"):
            # As production.ini: rows read from memory, kept in step by NOTIFY.
            settings["hyperapi.row_cache.enabled"] = "true"
    return settings


# -- servers ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    backend: str | None
    port: int
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def label(self) -> str:
        return f"{self.name}/{self.backend}" if self.backend else self.name

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []


def start_server(
    name: str, backend: str | None, url: str | None, workdir: Path, options: Options, procs
) -> Server:
    label = f"{name}-{backend}" if backend else name
    ini = workdir / f"{label}.ini"
    write_ini(ini, SERVERS[name], app_settings(name, url))
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--paste",
        str(ini),
        "--bind",
        f"{LOCALHOST}:{port}",
        "--workers",
        str(options.workers),
        "--worker-class",
        options.worker_class,
        "--pythonpath",
        str(BENCH / "baselines"),
    ]
    if options.worker_class == "gthread":
        argv += ["--threads", str(options.gthreads)]
        # A gthread worker accepts every connection it can, and keeps it: left alone, one
        # process could take all of wrk's connections at the start of a run and serve them on
        # one core while the other idles (measured: about half the requests per second, in
        # some runs and not others, for every server alike).
        argv += ["--worker-connections", str(options.worker_connections)]
    # Later options win: a server may set its own worker class or anything else.
    argv += SERVERS[name].get("gunicorn", [])
    process = procs.start(argv, workdir / f"{label}.log", cwd=workdir)
    server = Server(name, backend, port, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (workdir / f"{label}.log").read_text()[-3000:]
            raise SystemExit(f"{label} exited at start:\n{log}")
        try:
            urllib.request.urlopen(server.base + "/__lbheartbeat__", timeout=2)  # noqa: S310
            break
        except urllib.error.HTTPError:
            break  # an HTTP answer of any status: it serves
        except OSError:
            time.sleep(0.3)
    else:
        raise SystemExit(f"{label} did not answer within 60 s")
    while len(server.worker_pids()) < options.workers and time.monotonic() < deadline:
        time.sleep(0.2)
    return server


def peak_rss_mib(server: Server) -> list[float]:
    """VmHWM (peak resident set) of each gunicorn worker, in MiB."""
    peaks = []
    for pid in server.worker_pids():
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
            if match:
                peaks.append(int(match.group(1)) / 1024)
    return peaks


# -- fixtures the scenarios need ----------------------------------------------------------


def call(server: Server, method: str, path: str, headers: dict, body: dict | None = None):
    request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
        server.base + path,
        method=method,
        headers={**headers, **({"Content-Type": "application/json"} if body else {})},
        data=json.dumps(body).encode() if body is not None else None,
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return response.headers, json.loads(response.read() or b"null")


def local_path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def fixtures(server: Server, options: Options) -> dict:
    """Log in, make the posts the PUT scenario edits, find a cursor deep in the big table."""
    basic = base64.b64encode(f"{BENCH_USER}:{DEMO_PASSWORD}".encode()).decode()
    _, issued = call(server, "POST", "/api/v1/tokens", {"Authorization": f"Basic {basic}"})
    bearer = {"Authorization": f"Bearer {issued['token']}"}
    put_paths = []
    for n in range(2):
        headers, _ = call(server, "POST", "/api/v1/posts", bearer, {"body": f"to edit {n}"})
        put_paths.append("path=" + local_path(headers["Location"]))
    headers, _ = call(server, "GET", f"/api/v1/users/{OTHER_USER}", bearer)
    other_user_etag = headers["ETag"]
    # A page-number request (OFFSET, slow, once) whose next link is a keyset cursor.
    page = max(1, int(options.students * 0.9) // 25)
    _, body = call(server, "GET", f"/api/v1/students?per_page=25&page={page}", bearer)
    deep_path = local_path(body["_links"]["next"]["href"])
    return {
        "token": issued["token"],
        "basic": basic,
        "other_user": str(OTHER_USER),
        "other_user_etag": other_user_etag,
        "deep_path": deep_path,
        "put_paths": put_paths,
    }


# -- wrk --------------------------------------------------------------------------------


@dataclass
class Target:
    scenario: dict
    server: Server
    results: list[WrkResult] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.scenario["name"], self.server.name, self.server.backend)


def wrk_argv(target: Target, context: dict[str, str], seconds: int, options: Options):
    scenario = target.scenario
    threads = scenario.get("threads", options.threads)
    connections = scenario.get("connections", options.connections)
    args: list[str] = []
    for template in scenario["args"]:
        value = context.get(template.strip("{}")) if re.fullmatch(r"\{\w+\}", template) else None
        # A fixture that is a list ({put_paths}) becomes one argument per member.
        args += value if isinstance(value, list) else [template.format(**context)]
    assert target.server.base.startswith(f"http://{LOCALHOST}:")  # never anything else
    return [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        "--latency",
        f"--script={BENCH / 'wrk' / scenario['script']}",
        target.server.base,
        "--",
        *args,
    ]


def run_wrk(argv: list[str], seconds: int) -> WrkResult:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse(done.stdout)


def shown_command(argv: list[str], context: dict[str, str]) -> str:
    """The wrk command with this run's secrets and ports replaced by placeholders."""
    text = shlex.join(argv)
    text = text.replace(str(BENCH), "bench")
    for name in ("token", "basic"):
        text = text.replace(context[name], f"<{name}>")
    text = re.sub(r"cursor=[^&' ]+", "cursor=<deep cursor>", text)
    return re.sub(rf"http://{re.escape(LOCALHOST)}:\d+", f"http://{LOCALHOST}:<port>", text)


# -- the run ----------------------------------------------------------------------------


def interrupted(signum, frame):
    raise KeyboardInterrupt


def selected_scenarios(options: Options) -> list[dict]:
    return [s for s in SCENARIOS if not options.only or s["name"] in options.only]


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    check_tools()
    scenarios = selected_scenarios(options)
    backends = [b for b in options.backends if b != "postgresql" or postgresql_reachable()]
    needed = {name for s in scenarios for name in s["servers"]}
    workdir = Path(tempfile.mkdtemp(prefix="hyperapi-bench-"))
    procs = Processes()
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, through the finally below.
    signal.signal(signal.SIGTERM, interrupted)
    facts = machine_facts(options, backends)
    try:
        servers: dict[tuple[str, str | None], Server] = {}
        contexts: dict[str | None, dict[str, str]] = {}
        for backend in backends:
            url = prepare_database(backend, workdir, options)
            for name in sorted(needed):
                if SERVERS[name]["database"]:
                    servers[name, backend] = start_server(
                        name, backend, url, workdir, options, procs
                    )
            contexts[backend] = fixtures(servers["hyperapi", backend], options)
        for name in sorted(needed):
            if not SERVERS[name]["database"]:
                servers[name, None] = start_server(name, None, None, workdir, options, procs)
        contexts[None] = contexts[backends[0]]

        targets = [
            Target(scenario, server)
            for scenario in scenarios
            for (name, backend), server in servers.items()
            if name in scenario["servers"]
        ]
        targets.sort(
            key=lambda t: (
                scenarios.index(t.scenario),
                t.server.backend or "",
                t.scenario["servers"].index(t.server.name),
            )
        )
        total = len(targets) * options.rounds
        print(f"{total} runs of {options.duration} s (+{options.warmup} s warm-up)", flush=True)
        facts["load at start"] = load_average()
        for round_number in range(options.rounds):
            # Rotate the order each round, so no target always runs first or last.
            shift = round_number * max(1, len(targets) // options.rounds)
            for target in targets[shift:] + targets[:shift]:
                context = contexts[target.server.backend]
                if options.warmup:
                    run_wrk(wrk_argv(target, context, options.warmup, options), options.warmup)
                    # wrk leaves without waiting for its last requests, which the server
                    # still finishes: let them, before the measured run reads anything.
                    time.sleep(target.scenario.get("drain", 0))
                target.argv = wrk_argv(target, context, options.duration, options)
                result = run_wrk(target.argv, options.duration)
                target.results.append(result)
                print(
                    f"round {round_number + 1}/{options.rounds} {target.scenario['name']:18} "
                    f"{target.server.label:20} {result.requests_per_second:8.0f} req/s "
                    f"p50 {result.p50_ms:7.2f} ms p99 {result.p99_ms:7.2f} ms "
                    f"errors {result.errors}"
                    + "".join(f" {kind} {n}" for kind, n in result.error_kinds.items()),
                    flush=True,
                )
        facts["load at end"] = load_average()
        rss = {server.label: peak_rss_mib(server) for server in servers.values()}
        report(options, scenarios, targets, contexts, rss, facts)
    finally:
        procs.stop_all()
        if "postgresql" in backends and not options.keep:
            with contextlib.suppress(Exception):
                recreate_postgresql(drop_only=True)
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


# -- the report -------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def hyperapi_revision() -> str:
    """The commit measured, and whether the work tree had changes on top of it."""
    commit = tool_version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    changed = tool_version(["git", "-C", str(ROOT), "status", "--porcelain", "--", "hyperapi"])
    return f"{commit}" + (
        " with uncommitted changes in hyperapi/" if changed != "unknown" and changed else ""
    )


def machine_facts(options: Options, backends: list[str]) -> dict[str, str]:
    import gunicorn
    import sqlalchemy

    cpu = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = match.group(1) if match else cpu
    memory = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        memory = f"{int(match.group(1)) / 1024 / 1024:.0f} GiB" if match else memory
    facts = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "wrk": tool_version(["wrk", "--version"]).split(" Copyright")[0],
        "gunicorn": f"{gunicorn.__version__}, {options.workers} {options.worker_class} workers"
        + (
            f" x {options.gthreads} threads, at most {options.worker_connections} connections each"
            if options.worker_class == "gthread"
            else ""
        ),
        "SQLAlchemy": sqlalchemy.__version__,
        "backends": ", ".join(backends),
        "hyperapi": hyperapi_revision(),
    }
    if "postgresql" in backends:
        facts["PostgreSQL"] = tool_version(["psql", "--version"])
    import sqlite3

    facts["SQLite"] = sqlite3.sqlite_version
    return facts


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summary(target: Target) -> dict[str, float]:
    results = target.results
    return {
        "rps": median([r.requests_per_second for r in results]),
        "p50": median([r.p50_ms for r in results]),
        "p99": median([r.p99_ms for r in results]),
        "errors": sum(r.errors for r in results),
        "requests": sum(r.requests for r in results),
    }


def error_kinds(target: Target) -> str:
    """What the errors of ``target``'s runs were, e.g. " (non-2xx 1, read 2)"; "" if none."""
    kinds: dict[str, int] = {}
    for result in target.results:
        for kind, n in result.error_kinds.items():
            kinds[kind] = kinds.get(kind, 0) + n
    return " (" + ", ".join(f"{kind} {n}" for kind, n in kinds.items()) + ")" if kinds else ""


def find(targets: list[Target], scenario: str, server: str, backend: str | None):
    for target in targets:
        if target.key == (scenario, server, backend):
            return target
    return None


def baseline_of(targets, target: Target, versus: str) -> Target | None:
    """The target ``versus`` names for ``target``: a server, or another scenario."""
    scenario, server, backend = target.key
    if versus in SERVERS:
        backend = backend if SERVERS[versus]["database"] else None
        return find(targets, scenario, versus, backend)
    return find(targets, versus, server, backend)


def ratio(subject: Target, baseline: Target | None, metric: str) -> float | None:
    if baseline is None or not baseline.results or not subject.results:
        return None
    below = summary(baseline)[metric]
    return summary(subject)[metric] / below if below else None


def goal_rows(targets: list[Target]) -> list[list[str]]:
    rows = []
    for target in targets:
        scenario = target.scenario
        if target.server.name != scenario["servers"][0]:
            continue
        for goal in scenario.get("goals", []):
            value = ratio(target, baseline_of(targets, target, goal["versus"]), goal["metric"])
            if "at_least" in goal:
                bound, met = (
                    f">= {goal['at_least']}",
                    value is not None and value >= goal["at_least"],
                )
            else:
                bound, met = (
                    f"<= {goal['at_most']}",
                    value is not None and value <= goal["at_most"],
                )
            rows.append(
                [
                    f"#{goal['issue']}",
                    f"{scenario['name']} {goal['metric']} / {goal['versus']} {goal['metric']}",
                    target.server.backend or "-",
                    bound,
                    "n/a" if value is None else f"{value:.2f}",
                    "yes" if met else "**no**",
                ]
            )
    return rows


def noise_note(facts: dict[str, str]) -> list[str]:
    """Say so when other work shared the machine: the absolute figures suffer from it."""
    busiest = max(float(facts[key].split()[0]) for key in ("load at start", "load at end"))
    cores = int(facts["nproc"])
    if busiest <= cores / 2:
        return []
    return [
        f"**A busy machine:** the load average reached {busiest:.2f} on {cores} cores, so",
        "other work shared the CPUs with this run. Interleaving keeps the ratios fair, but",
        "the absolute figures are low and noisy (see the per-round columns); re-run on a",
        "quiet machine before quoting them.",
        "",
    ]


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def report(options, scenarios, targets, contexts, rss, facts) -> None:
    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/run.py`; see `bench/README.md` for what each scenario does and how",
        "to add one. Figures are medians over interleaved rounds; ratios compare medians",
        "measured in this same run.",
        "",
        f"Command: `{options.command}`",
        "",
        f"Method: {options.rounds} round(s); each run {options.duration} s after a "
        f"{options.warmup} s warm-up; wrk {options.threads} thread(s), "
        f"{options.connections} connections unless the scenario says otherwise; the targets "
        "run in turn within each round, the order rotated between rounds. Data: "
        f"{options.users:,} users, {options.posts:,} posts, {options.students:,} students "
        "(the big table).",
        "",
        *table(["fact", "value"], [[k, v] for k, v in facts.items()]),
        "",
        *noise_note(facts),
        "## Goals",
        "",
        "Ratios of medians (`rps`: requests per second, `p50`: median latency).",
        "",
        *table(["issue", "ratio", "backend", "target", "measured", "met"], goal_rows(targets)),
        "",
    ]
    for scenario in scenarios:
        mine = [t for t in targets if t.scenario is scenario and t.results]
        if not mine:
            continue
        versus = scenario.get("versus", [])
        header = [
            "server",
            "backend",
            "req/s",
            "req/s per round",
            "p50 ms",
            "p99 ms",
            "errors",
            *[f"/ {v}" for v in versus],
            "peak RSS/worker MiB",
        ]
        rows = []
        for target in mine:
            s = summary(target)
            ratios = []
            for v in versus:
                baseline = baseline_of(targets, target, v)
                value = None if baseline is target else ratio(target, baseline, "rps")
                ratios.append("" if value is None else f"{value:.2f}x")
            peaks = rss.get(target.server.label, [])
            rows.append(
                [
                    SERVERS[target.server.name]["title"],
                    target.server.backend or "-",
                    f"{s['rps']:.0f}",
                    " / ".join(f"{r.requests_per_second:.0f}" for r in target.results),
                    f"{s['p50']:.2f}",
                    f"{s['p99']:.2f}",
                    f"{s['errors']} of {s['requests']}{error_kinds(target)}",
                    *ratios,
                    f"{max(peaks):.0f}" if peaks else "n/a",
                ]
            )
        lines += [f"## {scenario['title']}", "", f"Scenario `{scenario['name']}`.", ""]
        lines += table(header, rows)
        commands = dict.fromkeys(
            shown_command(target.argv, contexts[target.server.backend]) for target in mine
        )
        lines += ["", "wrk, for each server (its port and the credentials replaced):", ""]
        lines += [f"    {command}" for command in commands]
        lines.append("")
    lines += ["## Plot", "", "![requests per second](results.png)", ""]
    (BENCH / "RESULTS.md").write_text("\n".join(lines))
    plot(targets)
    print("wrote bench/RESULTS.md and bench/results.png")


def plot(targets) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in targets if t.results]
    labels = [f"{t.scenario['name']}\n{t.server.label}" for t in shown]
    medians = [summary(t)["rps"] for t in shown]
    rounds = [[r.requests_per_second for r in t.results] for t in shown]
    lows = [m - min(r) for m, r in zip(medians, rounds, strict=True)]
    highs = [max(r) - m for m, r in zip(medians, rounds, strict=True)]
    colours = {"hyperapi": "#3b6ea8", "flask": "#c8553d", "cornice": "#6a994e"}
    figure, axes = plt.subplots(figsize=(10, 0.45 * len(shown) + 1.5))
    positions = list(range(len(shown)))[::-1]
    axes.barh(
        positions,
        medians,
        xerr=[lows, highs],
        color=[colours.get(t.server.name, "grey") for t in shown],
        capsize=3,
    )
    axes.set_yticks(positions, labels, fontsize=7)
    axes.set_xlabel("requests per second (median; bars span the rounds' min to max)")
    axes.set_title("hyperapi, bench/run.py: scenario, server/database", fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(BENCH / "results.png", dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
