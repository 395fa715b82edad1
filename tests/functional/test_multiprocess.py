"""Two real servers sharing one PostgreSQL database and one Redis behave as one service.

One server is ``gunicorn --paste production.ini`` with two workers, the other ``pserve
production.ini`` (waitress), each on its own loopback port, both configured only from the
environment as the README says. Everything below is real HTTP between processes: nothing a
process keeps in its own memory may make it disagree with the other.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from tests import servers
from tests.conftest import PASSWORD, scratch_database

pytestmark = pytest.mark.slow

#: The entry document's quota in these tests: small, so that the test can exhaust it.
ENTRY_QUOTA = 6
RATELIMIT = re.compile(r'"get-api.root";r=(?P<r>\d+);t=\d+')
TIMEOUT = 10
#: production.ini's hyperapi.row_cache.max_staleness: how late another process may see a change.
MAX_STALENESS = 1.0
#: What the pair's fixture made: {"database_url": ...}.
DEPLOYMENT: dict[str, str] = {}


@pytest.fixture(scope="module")
def pair(postgresql_url, redis_url, tmp_path_factory):
    """(gunicorn, pserve): two servers of one deployment."""
    with scratch_database("hyperapi_deploy") as database_url:
        env = servers.production_env(
            database_url,
            redis_url,
            HYPERAPI_RATELIMIT_ROUTES=f"GET api.root = {ENTRY_QUOTA}/minute",
            HYPERAPI_RESPONSE_CACHE_ROUTES="posts.item=60 posts.collection=60",
            # Cheap password hashing: the point here is sharing, not argon2's cost.
            HYPERAPI_ARGON2_TIME_COST="1",
            HYPERAPI_ARGON2_MEMORY_COST="8",
            HYPERAPI_ARGON2_PARALLELISM="1",
        )
        servers.initialize(env)
        DEPLOYMENT["database_url"] = database_url
        one, other = servers.free_port(), servers.free_port()
        directory = str(tmp_path_factory.mktemp("pserve"))
        with (
            servers.serving(servers.gunicorn(one), env, one) as first,
            servers.serving(servers.pserve(other, directory), env, other) as second,
        ):
            yield first.url, second.url


@pytest.fixture(scope="module")
def account(pair):
    first, _ = pair
    with servers.client() as http:
        created = http.post(
            first + "/api/v1/users",
            json={"username": "alice", "email": "alice@example.com", "password": PASSWORD},
            timeout=TIMEOUT,
        )
    assert created.status_code == 201, created.text
    return ("alice", PASSWORD)


def eventually(check, within: float = MAX_STALENESS + 0.1) -> None:
    """``check()`` holds by the time a check begins ``within`` seconds after the change
    (made before this call) that it waits for."""
    start = time.monotonic()
    while True:
        began = time.monotonic()
        if check():
            return
        assert began - start < within, "not seen by the other server in time"
        time.sleep(0.01)


def token(base: str, account) -> dict[str, str]:
    with servers.client() as http:
        issued = http.post(base + "/api/v1/tokens", auth=account, timeout=TIMEOUT)
    assert issued.status_code == 200, issued.text
    return {"Authorization": "Bearer " + issued.json()["token"]}


@pytest.mark.parametrize("direction", ["gunicorn-to-pserve", "pserve-to-gunicorn"])
def test_a_token_revoked_through_one_server_is_refused_by_the_other(pair, account, direction):
    revoking, checking = pair if direction == "gunicorn-to-pserve" else reversed(pair)
    bearer = token(revoking, account)
    with servers.client() as http:
        assert http.get(checking + "/api/v1/users", headers=bearer, timeout=TIMEOUT).ok
        revoked = http.delete(revoking + "/api/v1/tokens", headers=bearer, timeout=TIMEOUT)
        assert revoked.status_code == 204
        # The revoking server refuses it at once, every worker of the other once its
        # listener has the notification: within max_staleness (production.ini's row cache).
        refused = http.get(revoking + "/api/v1/users", headers=bearer, timeout=TIMEOUT)
        assert refused.status_code == 401
        eventually(
            lambda: all(
                http.get(checking + "/api/v1/users", headers=bearer, timeout=TIMEOUT).status_code
                == 401
                for _ in range(4)  # gunicorn's requests are spread over its two workers
            )
        )
        for base in (checking, revoking) * 3:
            refused = http.get(base + "/api/v1/users", headers=bearer, timeout=TIMEOUT)
            assert refused.status_code == 401, base
            assert "revoked" in refused.json()["detail"]


def test_the_rate_limit_is_one_budget_across_servers(pair):
    first, second = pair
    remaining = []
    with servers.client() as http:
        for i in range(ENTRY_QUOTA):
            response = http.get((first, second)[i % 2] + "/api/v1/", timeout=TIMEOUT)
            assert response.status_code == 200
            remaining.append(int(RATELIMIT.fullmatch(response.headers["RateLimit"])["r"]))
        refused = [http.get(base + "/api/v1/", timeout=TIMEOUT) for base in pair]
    # One counter: each request, through either server, took one from the same quota.
    assert remaining == list(range(ENTRY_QUOTA - 1, -1, -1))
    assert [r.status_code for r in refused] == [429, 429]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)


def test_a_write_through_one_server_changes_the_etag_seen_through_the_other(pair, account):
    writer, reader = pair
    with servers.client() as http:
        http.auth = account
        created = http.post(writer + "/api/v1/posts", json={"body": "ada"}, timeout=TIMEOUT)
        assert created.status_code == 201
        path = created.headers["Location"].removeprefix(writer)
        before = http.get(reader + path, timeout=TIMEOUT)
        listed = http.get(reader + "/api/v1/posts", timeout=TIMEOUT)
        # Read twice: the second answer may come from the shared response cache.
        assert http.get(reader + path, timeout=TIMEOUT).headers["ETag"] == before.headers["ETag"]

        changed = http.patch(
            writer + path,
            json={"body": "grace"},
            headers={"If-Match": before.headers["ETag"]},
            timeout=TIMEOUT,
        )
        assert changed.status_code == 200

        eventually(
            lambda: all(
                http.get(reader + path, timeout=TIMEOUT).headers["ETag"] == changed.headers["ETag"]
                for _ in range(4)  # gunicorn's requests are spread over its two workers
            )
        )
        after = http.get(reader + path, timeout=TIMEOUT)
        assert after.headers["ETag"] == changed.headers["ETag"] != before.headers["ETag"]
        assert after.json()["body"] == "grace"
        stale = http.get(reader + path, headers={"If-None-Match": before.headers["ETag"]})
        assert stale.status_code == 200
        current = http.get(reader + path, headers={"If-None-Match": after.headers["ETag"]})
        assert current.status_code == 304
        relisted = http.get(reader + "/api/v1/posts", timeout=TIMEOUT)
        assert relisted.headers["ETag"] != listed.headers["ETag"]
        assert [p["body"] for p in relisted.json()["items"]] == ["grace"]


def test_concurrent_if_match_writes_through_both_servers_have_exactly_one_winner(pair, account):
    with servers.client() as http:
        created = http.post(
            pair[0] + "/api/v1/posts", json={"body": "start"}, auth=account, timeout=TIMEOUT
        )
    path = created.headers["Location"].removeprefix(pair[0])
    for round_ in range(8):
        with servers.client() as http:
            etag = http.get(pair[1] + path, auth=account, timeout=TIMEOUT).headers["ETag"]
        barrier = threading.Barrier(2, timeout=TIMEOUT)

        def write(base: str, name: str, etag=etag, barrier=barrier):
            with servers.client() as http:
                http.auth = account
                http.head(base + "/__lbheartbeat__", timeout=TIMEOUT)  # connect first
                barrier.wait()
                return name, http.patch(
                    base + path, json={"body": name}, headers={"If-Match": etag}, timeout=TIMEOUT
                )

        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(write, base, f"{i}-{round_}") for i, base in enumerate(pair)]
            results = [future.result() for future in futures]
        statuses = sorted(response.status_code for _, response in results)
        assert statuses == [200, 412], (round_, [r.text for _, r in results])
        (winner, won), (_, lost) = sorted(results, key=lambda r: r[1].status_code)
        # The loser is told the winner's version, in the header and the body.
        assert lost.headers["ETag"] == won.headers["ETag"]
        assert lost.json()["current"]["body"] == winner
        with servers.client() as http:
            for base in pair:
                final = http.get(base + path, auth=account, timeout=TIMEOUT)
                assert (final.json()["body"], final.headers["ETag"]) == (
                    winner,
                    won.headers["ETag"],
                )


def test_every_worker_of_both_servers_listens_for_changes(pair, account):
    # production.ini's row cache: one listener (and connection) per process, started by
    # the process's first read; gunicorn's workers are forked, so each has its own.
    engine = sa.create_engine(DEPLOYMENT["database_url"])
    try:

        def listeners() -> int:
            with servers.client() as http:
                for base in pair * 4:
                    assert http.get(base + "/api/v1/users", auth=account, timeout=TIMEOUT).ok
            with engine.connect() as connection:
                return connection.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = 'hyperapi change listener'"
                    )
                ).scalar()

        eventually(lambda: listeners() == 3, within=10)  # two gunicorn workers, one pserve
    finally:
        engine.dispose()
