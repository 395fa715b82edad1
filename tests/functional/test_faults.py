"""Faults against a real server: PostgreSQL or Redis unreachable, a worker killed mid-write.

The server under test is hyperapi under gunicorn (production environment, 2 gthread
workers), reaching PostgreSQL or Redis through a :class:`~tests.faults.FaultProxy` that the
test cuts and restores: the shared servers themselves are never touched. Client threads
record every answer; afterwards the database is read directly and audited against them
(:class:`~tests.faults.Audit`: acknowledged writes stored exactly once, refused ones not at
all, those the client cannot know about at most once). Run with ``pytest -s`` to see the
figures.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
import uuid
from statistics import median
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from hyperapi.errors import PROBLEM_JSON, Problem
from hyperapi.security.tokens import RedisRevocations
from tests.conftest import REDIS_PREFIX, basic, empty_database
from tests.faults import (
    RETRY_AFTER,
    ROLLBACK,
    Audit,
    FaultProxy,
    Tally,
    Write,
    bearer,
    consistent_counters,
    register,
    report,
    server_settings,
    stored,
)
from tests.servers import SECRETS, Server, start_generated, wait_for

pytestmark = [pytest.mark.postgresql, pytest.mark.fault, pytest.mark.slow]

SERVICE_UNAVAILABLE = "/api/v1/problems/service-unavailable"


def through(proxy: FaultProxy, url: str) -> str:
    """``url`` with its host and port replaced by the proxy's (and no TLS, to see COMMITs)."""
    parsed = sa.engine.make_url(url)
    return parsed.set(
        host="127.0.0.1", port=proxy.port, query={"sslmode": "disable"}
    ).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def database(postgresql_url):
    engine = sa.create_engine(postgresql_url)
    empty_database(engine)
    yield engine
    empty_database(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def pg_proxy(postgresql_url):
    port = sa.engine.make_url(postgresql_url).port or 5432
    proxy = FaultProxy(port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, postgresql_url, pg_proxy, database):
    """One server whose every database connection goes through ``pg_proxy``."""
    settings = server_settings(through(pg_proxy, postgresql_url))
    instance = start_generated(tmp_path_factory.mktemp("faults"), settings, environ=SECRETS)
    yield instance
    instance.stop()


@pytest.fixture
def healthy(pg_proxy):
    """The proxy forwards at the start and the end of every test, whatever it did."""
    pg_proxy.up()
    pg_proxy.commit_delay = 0.0
    pg_proxy.cut_at_commit(delivered=False, count=0)
    yield pg_proxy
    pg_proxy.up()
    pg_proxy.commit_delay = 0.0
    pg_proxy.cut_at_commit(delivered=False, count=0)


class Writers:
    """Threads that create posts with unique bodies until stopped, recording every answer."""

    def __init__(self, server: Server, headers: dict[str, str], tally: Tally, threads: int):
        self.server = server
        self.headers = headers
        self.tally = tally
        self.writes: list[Write] = []
        self.problems: list[tuple[float, object]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(threads)
        ]

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def run(self, n: int) -> None:
        count = 0
        while not self.stop.is_set():
            count += 1
            key = f"w{n}-{count}-{uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            try:
                reply = self.server.request(
                    "POST", "/api/v1/posts", headers=self.headers, body={"body": key}, timeout=15
                )
            except OSError:
                write = Write(key, None, started=started)
            else:
                outcome = None
                if reply.status >= 400:
                    problem = reply.json if PROBLEM_JSON in reply.headers["Content-Type"] else {}
                    outcome = problem.get("outcome")
                    with self.lock:
                        self.problems.append((started, reply))
                write = Write(key, reply.status, outcome, started)
            write.elapsed = time.monotonic() - started
            self.tally.add("create", write.status)
            with self.lock:
                self.writes.append(write)
            if write.status != 201:
                time.sleep(0.02)

    def after(self, moment: float) -> list[Write]:
        with self.lock:
            return [w for w in self.writes if w.started >= moment]


def assert_service_unavailable(reply, *, write: bool) -> None:
    assert reply.status == 503, reply.body
    assert reply.headers["Retry-After"] == RETRY_AFTER
    assert reply.headers["Content-Type"].startswith(PROBLEM_JSON)
    problem = reply.json
    assert problem["type"] == SERVICE_UNAVAILABLE
    assert "Traceback" not in reply.body.decode()
    if write:
        assert problem["outcome"] in ("not-applied", "unknown")
    else:
        assert "outcome" not in problem


# -- PostgreSQL ---------------------------------------------------------------------------


def test_postgresql_outage_answers_503_with_retry_after_then_recovers_losing_no_write(
    server, healthy, database
):
    account = register(server)
    tally = Tally()
    reads: list[tuple[float, object]] = []
    log_before = len(server.log())

    def read_until(stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                reply = server.request(
                    "GET", "/api/v1/posts?per_page=5", headers=bearer(account), timeout=15
                )
            except OSError:
                tally.add("read", None)
                continue
            tally.add("read", reply.status)
            reads.append((started, reply))
            time.sleep(0.01)

    stop_reading = threading.Event()
    reader = threading.Thread(target=read_until, args=(stop_reading,), daemon=True)
    with Writers(server, bearer(account), tally, threads=3) as writers:
        reader.start()
        time.sleep(1.0)
        healthy.down()
        down_at = time.monotonic()
        # The heartbeat notices (a load balancer would take the instance out of rotation).
        heartbeat_down = wait_for(
            lambda: server.request("GET", "/__heartbeat__").status == 503, timeout=5
        )
        outage_heartbeat = server.request("GET", "/__heartbeat__")
        time.sleep(max(0.0, 2.5 - (time.monotonic() - down_at)))
        healthy.up()
        up_at = time.monotonic()
        heartbeat_up = wait_for(
            lambda: server.request("GET", "/__heartbeat__").status == 200, timeout=10
        )
        ready_at = time.monotonic()
        time.sleep(1.5)
        stop_reading.set()
        reader.join(10)
    audit = Audit.of(writers.writes, stored(database, [w.key for w in writers.writes]))
    recovered = writers.after(ready_at)
    figures = report(
        "PostgreSQL outage of 2.5 s",
        tally.figures(),
        audit.figures(),
        f"heartbeat 503 after {heartbeat_down}s of outage, 200 again {heartbeat_up}s after "
        "the database returned",
        f"writes started after the heartbeat recovered: {len(recovered)}, "
        f"statuses {sorted({w.status for w in recovered})}",
    )

    assert heartbeat_down is not None, figures
    assert outage_heartbeat.status == 503 and outage_heartbeat.json["database"] is False
    assert heartbeat_up is not None, figures
    # Never a 500: during the outage 503s, otherwise successes.
    assert set(tally.statuses("create")) <= {"201", "503"}, figures
    assert set(tally.statuses("read")) <= {"200", "503"}, figures
    assert tally.statuses("create").get("503", 0) >= 3, figures
    for _, reply in writers.problems:
        assert_service_unavailable(reply, write=True)
    for _, reply in reads:
        if reply.status != 200:
            assert_service_unavailable(reply, write=False)
    # Every failure happened while the database was away; once the heartbeat said ready,
    # every request succeeded, with no restart.
    assert all(started < ready_at for started, _ in writers.problems), figures
    assert recovered and all(w.status == 201 for w in recovered), figures
    assert all(r.status == 200 for started, r in reads if started >= ready_at), figures
    assert up_at - down_at >= 2.5
    # No request reported as successful that was not stored; no refused one stored.
    assert audit.holds, figures
    assert audit.found_of_acknowledged == audit.acknowledged, figures
    posts, state, authored = consistent_counters(database)
    assert posts == state == authored, (posts, state, authored)
    # One warning line per worker per interval, no tracebacks.
    log = server.log()[log_before:]
    assert "Traceback" not in log, log[-3000:]
    warnings = [line for line in log.splitlines() if "database unavailable" in line]
    assert 1 <= len(warnings) <= 2 * server.workers, log[-3000:]


@pytest.mark.parametrize(
    ("delivered", "stored_rows"), [(True, 1), (False, 0)], ids=["committed", "rolled-back"]
)
def test_connection_lost_during_commit_is_a_503_whose_outcome_is_unknown(
    server, healthy, database, delivered, stored_rows
):
    # Whether the database executed the COMMIT or never saw it, the server cannot tell:
    # it says so, and the client looks before retrying.
    account = register(server)
    key = f"commit-{delivered}-{uuid.uuid4().hex[:8]}"
    healthy.cut_at_commit(delivered=delivered)
    reply = server.request("POST", "/api/v1/posts", headers=bearer(account), body={"body": key})

    assert_service_unavailable(reply, write=True)
    assert reply.json["outcome"] == "unknown"
    assert healthy.commits_cut >= 1
    assert stored(database, [key]).get(key, 0) == stored_rows
    # The next request gets a fresh connection: no stale one is handed out.
    again = server.request("POST", "/api/v1/posts", headers=bearer(account), body={"body": key})
    assert again.status == 201
    posts, state, authored = consistent_counters(database)
    assert posts == state == authored


def test_connection_lost_while_a_read_rolls_back_does_not_spoil_its_answer(server, healthy):
    # A read's connection is rolled back after its answer is made; losing it then is no
    # reason to replace a good answer with a 500.
    account = register(server)
    healthy.cut_at_commit(delivered=False, statement=ROLLBACK)
    reply = server.request("GET", "/api/v1/posts", headers=bearer(account))

    assert healthy.commits_cut >= 1
    assert reply.status == 200, reply.body
    assert server.request("GET", "/api/v1/posts", headers=bearer(account)).status == 200


def test_refused_write_during_outage_says_not_applied_and_is_not_stored(server, healthy, database):
    account = register(server)
    healthy.down()
    key = f"refused-{uuid.uuid4().hex[:8]}"
    reply = server.request("POST", "/api/v1/posts", headers=bearer(account), body={"body": key})
    healthy.up()

    assert_service_unavailable(reply, write=True)
    assert reply.json["outcome"] == "not-applied"
    assert stored(database, [key]) == {}


def test_unanswering_database_host_gives_503_within_the_connect_timeout(server, healthy):
    # A host that drops packets (no RST) would hold a request for minutes without
    # sqlalchemy.connect_timeout (1 s here).
    account = register(server)
    healthy.blackhole()
    started = time.monotonic()
    reply = server.request("GET", "/api/v1/posts", headers=bearer(account))
    elapsed = time.monotonic() - started
    heartbeat = server.request("GET", "/__heartbeat__")
    healthy.up()

    assert_service_unavailable(reply, write=False)
    assert elapsed < 5, elapsed
    assert heartbeat.status == 503
    ok = server.request("GET", "/api/v1/posts", headers=bearer(account))
    assert ok.status == 200


def test_killed_worker_loses_no_committed_write_and_is_restarted(server, healthy, database):
    account = register(server)
    tally = Tally()
    # Each COMMIT waits 0.15 s in the proxy, so that a kill finds writes in flight.
    healthy.commit_delay = 0.15
    before = set(server.worker_pids())
    with Writers(server, bearer(account), tally, threads=4) as writers:
        time.sleep(1.0)
        # Every worker, so that the kill certainly finds writes in flight.
        for victim in before:
            os.kill(victim, signal.SIGKILL)
        restarted = wait_for(
            lambda: (
                len(server.worker_pids()) == server.workers
                and not before & set(server.worker_pids())
            ),
            timeout=30,
        )
        # The new workers load the application before they serve.
        serving = wait_for(lambda: server.request("GET", "/__lbheartbeat__").status == 200, 30)
        serving_at = time.monotonic()
        time.sleep(1.5)
    healthy.commit_delay = 0.0
    # A write whose COMMIT the proxy still held when its worker died may land now.
    time.sleep(0.5)
    after = set(server.worker_pids())
    audit = Audit.of(writers.writes, stored(database, [w.key for w in writers.writes]))
    late = writers.after(serving_at)
    figures = report(
        "SIGKILL of a gunicorn worker during writes",
        tally.figures(),
        audit.figures(),
        f"workers {sorted(before)} killed; the master started {sorted(after)} within "
        f"{restarted}s, serving {serving}s later; writes started after that: {len(late)}; "
        f"median write {median(w.elapsed for w in writers.writes):.3f}s",
    )

    assert restarted is not None and serving is not None, figures
    assert not before & after and len(after) == server.workers, figures
    # The kill cut requests in flight: their clients got no answer, and cannot know.
    assert tally.statuses("create").get("no answer", 0) >= 1, figures
    assert set(tally.statuses("create")) <= {"201", "no answer"}, figures
    assert audit.holds, figures
    assert audit.found_of_acknowledged == audit.acknowledged > 0, figures
    assert late and all(w.status == 201 for w in late), figures
    # Nothing half-written: every stored post is counted once in both counters.
    posts, state, authored = consistent_counters(database)
    assert posts == state == authored, (posts, state, authored)


# -- Redis --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_proxy(redis_url):
    port = sa.engine.make_url(redis_url).port or 6379
    proxy = FaultProxy(port)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory, postgresql_url, redis_proxy, redis_url, database):
    """Revocations, rate-limit counters and the response cache in Redis, via the proxy."""
    db = sa.engine.make_url(redis_url).database or "0"
    url = f"redis://127.0.0.1:{redis_proxy.port}/{db}"
    prefix = f"hyperapi-faults-{uuid.uuid4().hex[:8]}"
    settings = server_settings(
        postgresql_url,
        **{
            "hyperapi.redis.url": url,
            "hyperapi.auth.revocations": "redis",
            "hyperapi.ratelimit.storage_url": url,
            "hyperapi.ratelimit.key_prefix": prefix,
            "hyperapi.response_cache.backend": "redis",
            "hyperapi.response_cache.key_prefix": f"{prefix}:response:",
            "hyperapi.response_cache.routes": "posts.collection=30",
        },
    )
    instance = start_generated(tmp_path_factory.mktemp("redis-faults"), settings, environ=SECRETS)
    yield instance
    instance.stop()


def test_redis_outage_keeps_the_api_serving_as_configured(redis_server, redis_proxy):
    server = redis_server
    account = register(server)
    revoked = server.request("POST", "/api/v1/tokens", headers=basic(account["username"]))
    revoked_bearer = {"Authorization": "Bearer " + revoked.json["token"]}
    assert server.request("DELETE", "/api/v1/tokens", headers=revoked_bearer).status == 204
    ok = server.request("GET", "/api/v1/posts", headers=bearer(account))
    assert ok.status == 200 and "RateLimit" in ok.headers

    redis_proxy.down()
    try:
        # Revocations fail closed: a token that may have been revoked is not trusted.
        token_read = server.request("GET", "/api/v1/posts", headers=bearer(account))
        token_revoke = server.request("DELETE", "/api/v1/tokens", headers=bearer(account))
        # Password authentication needs no revocation list: reads and writes go on, with
        # the rate limiter failing open (no RateLimit field) and the response cache missing.
        basic_read = server.request("GET", "/api/v1/posts", headers=basic(account["username"]))
        basic_write = server.request(
            "POST", "/api/v1/posts", headers=basic(account["username"]), body={"body": "during"}
        )
        heartbeat = server.request("GET", "/__heartbeat__")
    finally:
        redis_proxy.up()
    report(
        "Redis outage",
        f"bearer read {token_read.status}, bearer revoke {token_revoke.status}, "
        f"basic read {basic_read.status}, basic write {basic_write.status}, "
        f"heartbeat {heartbeat.status} {heartbeat.json}",
    )

    for reply in (token_read, token_revoke):
        assert reply.status == 503, reply.body
        assert reply.headers["Content-Type"].startswith(PROBLEM_JSON)
        assert reply.json["type"] == SERVICE_UNAVAILABLE
        assert int(reply.headers["Retry-After"]) >= 1
    assert basic_read.status == 200 and "RateLimit" not in basic_read.headers
    assert basic_write.status == 201
    assert heartbeat.status == 503 and heartbeat.json["database"] is True
    # Back: the token works again and the revocation made before the outage still holds.
    assert wait_for(lambda: server.request("GET", "/__heartbeat__").status == 200, 10)
    assert server.request("GET", "/api/v1/posts", headers=bearer(account)).status == 200
    assert server.request("GET", "/api/v1/posts", headers=revoked_bearer).status == 401


def test_redis_revocations_can_be_set_to_fail_open(redis_proxy):
    url = f"redis://127.0.0.1:{redis_proxy.port}/15"
    settings = {
        "hyperapi.redis.url": url,
        "hyperapi.auth.revocations_key_prefix": f"{REDIS_PREFIX}:revoked:",
    }
    closed = RedisRevocations(SimpleNamespace(settings=settings))
    opened = RedisRevocations(
        SimpleNamespace(settings={**settings, "hyperapi.auth.revocations_fail_open": True})
    )
    redis_proxy.down()
    try:
        with pytest.raises(Problem) as refused:
            closed.is_revoked(None, "some-token-id")
        accepted = opened.is_revoked(None, "some-token-id")
        # Failing open never extends to revoking: a revocation that was not stored is a 503.
        with pytest.raises(Problem) as not_revoked:
            opened.revoke(None, "some-token-id", time_in(60))
    finally:
        redis_proxy.up()
        closed.close()
        opened.close()
    assert refused.value.code == 503 and "Retry-After" in refused.value.headers
    assert accepted is False
    assert not_revoked.value.code == 503


def time_in(seconds: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
