"""A soak: a bounded mixed workload from several clients against a real server on PostgreSQL.

Client threads read items and pages, revalidate them (If-None-Match, expecting 304s), create
posts and increment one shared counter by read-modify-write with If-Match, retrying on 412
from the representation the 412 carries. Then the database is audited: every acknowledged
create is stored exactly once, the counter equals the number of acknowledged increments (no
update was lost), the posts' counters agree with their rows, and no answer was a 5xx.

It runs for ``HYPERAPI_SOAK_SECONDS`` (30 by default, so that the suite stays short;
``HYPERAPI_SOAK_SECONDS=300 pytest -s -m soak`` for a longer run) with
``HYPERAPI_SOAK_CLIENTS`` threads (6). ``pytest -s`` prints the figures.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from statistics import quantiles

import pytest
import sqlalchemy as sa

from tests.conftest import empty_database
from tests.faults import (
    Audit,
    Tally,
    Write,
    bearer,
    consistent_counters,
    register,
    report,
    server_settings,
    stored,
)
from tests.servers import SECRETS, Server, start_generated

pytestmark = [pytest.mark.postgresql, pytest.mark.soak, pytest.mark.slow]

SECONDS = float(os.environ.get("HYPERAPI_SOAK_SECONDS", "30"))
CLIENTS = int(os.environ.get("HYPERAPI_SOAK_CLIENTS", "6"))
#: Operation -> weight in the mix.
MIX = {
    "item": 25,
    "page": 10,
    "revalidate item": 15,
    "revalidate page": 10,
    "create": 20,
    "increment": 20,
}


def local(url: str) -> str:
    return "/" + url.split("/", 3)[3]


class Workload:
    """The clients' shared knowledge and everything they were told."""

    def __init__(self, server: Server, owner: dict, others: list[dict], counter: str):
        self.server = server
        self.owner = owner
        self.accounts = [owner, *others]
        self.counter = counter
        self.tally = Tally()
        self.lock = threading.Lock()
        self.writes: list[Write] = []
        #: Known post paths and the ETag last seen for each (and for the page).
        self.etags: dict[str, str] = {}
        self.posts: list[str] = []
        self.increments = 0
        self.retries = 0
        self.latencies: list[float] = []
        self.unexpected: list[str] = []

    def call(self, kind: str, method: str, path: str, headers: dict, body=None):
        started = time.monotonic()
        try:
            reply = self.server.request(method, path, headers=headers, body=body, timeout=30)
        except OSError as exc:
            self.tally.add(kind, None)
            with self.lock:
                self.unexpected.append(f"{kind} {method} {path}: {exc!r}")
            return None
        elapsed = time.monotonic() - started
        self.tally.add(kind, reply.status)
        with self.lock:
            self.latencies.append(elapsed)
            if reply.status >= 500:
                self.unexpected.append(f"{kind} {method} {path}: {reply.status} {reply.body!r}")
        return reply

    def client(self, n: int, deadline: float) -> None:
        rng = random.Random(n)
        account = self.accounts[n % len(self.accounts)]
        kinds, weights = list(MIX), list(MIX.values())
        while time.monotonic() < deadline:
            getattr(self, rng.choices(kinds, weights)[0].replace(" ", "_"))(rng, account)

    def pick(self, rng) -> str:
        with self.lock:
            return rng.choice(self.posts) if self.posts else self.counter

    def item(self, rng, account) -> None:
        path = self.pick(rng)
        reply = self.call("item", "GET", path, bearer(account))
        if reply is not None and reply.status == 200:
            with self.lock:
                self.etags[path] = reply.headers["ETag"]

    def page(self, rng, account) -> None:
        path = "/api/v1/posts?per_page=10"
        reply = self.call("page", "GET", path, bearer(account))
        if reply is not None and reply.status == 200:
            with self.lock:
                self.etags[path] = reply.headers["ETag"]

    def revalidate(self, kind: str, path: str, account) -> None:
        with self.lock:
            etag = self.etags.get(path)
        if etag is None:
            return
        headers = {**bearer(account), "If-None-Match": etag}
        reply = self.call(kind, "GET", path, headers)
        if reply is not None and reply.status == 200:
            with self.lock:
                self.etags[path] = reply.headers["ETag"]
        elif reply is not None and reply.status == 304 and reply.body:
            with self.lock:
                self.unexpected.append(f"304 with a body for {path}")

    def revalidate_item(self, rng, account) -> None:
        self.revalidate("revalidate item", self.pick(rng), account)

    def revalidate_page(self, rng, account) -> None:
        self.revalidate("revalidate page", "/api/v1/posts?per_page=10", account)

    def create(self, rng, account) -> None:
        key = f"soak-{uuid.uuid4().hex}"
        started = time.monotonic()
        reply = self.call("create", "POST", "/api/v1/posts", bearer(account), {"body": key})
        status = None if reply is None else reply.status
        outcome = reply.json.get("outcome") if reply is not None and status >= 400 else None
        with self.lock:
            self.writes.append(Write(key, status, outcome, started))
            if status == 201:
                self.posts.append(local(reply.headers["Location"]))

    def increment(self, rng, account) -> None:
        """Read the counter, write it plus one with If-Match; on 412 retry from its body."""
        headers = bearer(self.owner)
        reply = self.call("counter read", "GET", self.counter, headers)
        if reply is None or reply.status != 200:
            return
        etag, value = reply.headers["ETag"], int(reply.json["body"])
        for _ in range(50):
            reply = self.call(
                "increment",
                "PATCH",
                self.counter,
                {**headers, "If-Match": etag},
                {"body": str(value + 1)},
            )
            if reply is None:
                return
            if reply.status == 200:
                with self.lock:
                    self.increments += 1
                return
            if reply.status != 412:
                with self.lock:
                    self.unexpected.append(f"increment: {reply.status} {reply.body!r}")
                return
            # RFC 9110 §13.1.1: the 412 names the current ETag and carries the current state.
            with self.lock:
                self.retries += 1
            etag, value = reply.headers["ETag"], int(reply.json["current"]["body"])
        with self.lock:
            self.unexpected.append("increment: 50 lost races in a row")


@pytest.fixture(scope="module")
def database(postgresql_url):
    engine = sa.create_engine(postgresql_url)
    empty_database(engine)
    yield engine
    empty_database(engine)
    engine.dispose()


def test_soak_mixed_workload_loses_no_write_and_no_update(tmp_path, postgresql_url, database):
    settings = server_settings(
        postgresql_url, **{"hyperapi.response_cache.routes": "posts.collection=30"}
    )
    server = start_generated(tmp_path, settings, environ=SECRETS)
    try:
        owner, *others = [register(server) for _ in range(3)]
        created = server.request(
            "POST", "/api/v1/posts", headers=bearer(owner), body={"body": "0"}
        )
        assert created.status == 201, created.body
        workload = Workload(server, owner, others, local(created.headers["Location"]))
        started = time.monotonic()
        deadline = started + SECONDS
        threads = [
            threading.Thread(target=workload.client, args=(n, deadline), daemon=True)
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SECONDS + 60)
        elapsed = time.monotonic() - started
        log = server.log()
    finally:
        server.stop()

    audit = Audit.of(workload.writes, stored(database, [w.key for w in workload.writes]))
    with database.connect() as connection:
        counter = int(
            connection.execute(
                sa.text("SELECT body FROM posts WHERE id = :id"),
                {"id": int(workload.counter.rsplit("/", 1)[1])},
            ).scalar_one()
        )
    posts, state, authored = consistent_counters(database)
    cuts = quantiles(workload.latencies, n=100)
    statuses = workload.tally.statuses()
    figures = report(
        f"soak: {CLIENTS} clients for {elapsed:.0f} s against PostgreSQL (2 gunicorn workers)",
        f"{workload.tally.figures()}",
        f"{workload.tally.total / elapsed:.0f} requests/s; latency p50 {cuts[49] * 1000:.1f} ms, "
        f"p99 {cuts[98] * 1000:.1f} ms",
        audit.figures(),
        f"increments acknowledged {workload.increments}, counter {counter}, "
        f"412 retries {workload.retries}; 304s {statuses.get('304', 0)}",
        f"posts {posts}, posts collection count {state}, sum of post_count {authored}",
        f"unexpected: {workload.unexpected[:5]}",
    )

    assert not workload.unexpected, figures
    assert not any(status.startswith("5") for status in statuses), figures
    assert "no answer" not in statuses, figures
    # Every 4xx is a lost If-Match race, answered 412 and retried.
    assert set(workload.tally.errors()) <= {"412"}, figures
    assert audit.holds and audit.acknowledged == audit.attempted > 0, figures
    assert audit.found_of_acknowledged == audit.acknowledged, figures
    assert counter == workload.increments > 0, figures
    assert statuses.get("304", 0) > 0, figures
    assert posts == state == authored, figures
    assert "Traceback" not in log, log[-3000:]
