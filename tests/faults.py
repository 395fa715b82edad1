"""Fault injection, and the audit of what clients were told against what was stored.

:class:`FaultProxy` stands between the server under test and a backend (PostgreSQL, Redis)
on 127.0.0.1, so that a test can make the backend unavailable without touching the real
server, which other test runs share: ``down()`` resets every open connection and every new
one, ``blackhole()`` accepts connections and then never answers, ``up()`` forwards again.
``cut_at_commit()`` drops the connection of the next transaction to send ``COMMIT``,
either before the server receives it or after the server has executed it but before its
answer is relayed: the two cases a client cannot tell apart.

:class:`Write`, :class:`Audit` and :class:`Tally` record what clients were told, and
:func:`stored` reads what PostgreSQL holds. The server processes themselves come from
:mod:`tests.servers`; :func:`server_settings` is the configuration these tests give them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from tests.conftest import PASSWORD, TEST_SETTINGS, basic
from tests.servers import LOCALHOST, Server

#: A COMMIT statement in the PostgreSQL wire protocol (simple or extended query), as sent
#: by psycopg: the query text is NUL-terminated.
COMMIT = b"COMMIT\x00"
ROLLBACK = b"ROLLBACK\x00"


def reset(sock: socket.socket) -> None:
    """Close ``sock`` abruptly (RST), waking any thread blocked reading it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class Link:
    """One proxied connection: the client's socket, the upstream one, two pumps."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        #: Set when the upstream's answers must no longer reach the client.
        self.muted = threading.Event()
        self.closed = False

    def start(self) -> None:
        for source, target, outbound in (
            (self.client, self.upstream, True),
            (self.upstream, self.client, False),
        ):
            threading.Thread(
                target=self.pump, args=(source, target, outbound), daemon=True
            ).start()

    def pump(self, source: socket.socket, target: socket.socket, outbound: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if outbound and self.proxy.cut_statement in data:
                    if self.proxy.take_commit_fault():
                        self.fail_commit(data)
                        return
                    if self.proxy.commit_delay and COMMIT in data:
                        # Hold the COMMIT back: the request stays in flight meanwhile.
                        time.sleep(self.proxy.commit_delay)
                if not outbound and self.muted.is_set():
                    continue
                target.sendall(data)
        except OSError:
            pass
        self.close()

    def fail_commit(self, data: bytes) -> None:
        if self.proxy.commit_delivered:
            # The server executes the COMMIT; its answer never reaches the client.
            self.muted.set()
            self.upstream.sendall(data)
            time.sleep(0.3)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            reset(self.client)
            reset(self.upstream)
            self.proxy.forget(self)


class FaultProxy:
    """A TCP proxy on 127.0.0.1 to ``upstream_port`` that fails on command."""

    def __init__(self, upstream_port: int, upstream_host: str = LOCALHOST):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server((LOCALHOST, 0))
        self.port = self.listener.getsockname()[1]
        self.mode = "up"
        self.links: set[Link] = set()
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.commit_faults = 0
        self.commit_delivered = False
        self.cut_statement = COMMIT
        #: Seconds each COMMIT is held before it is forwarded.
        self.commit_delay = 0.0
        #: Connections accepted in each mode, and COMMITs cut: what a test can assert on.
        self.accepted = {"up": 0, "down": 0, "blackhole": 0}
        self.commits_cut = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                mode = self.mode
                self.accepted[mode] += 1
                if mode == "blackhole":
                    self.held.append(client)
                    continue
            if mode == "down":
                reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                reset(client)
                continue
            link = Link(self, client, upstream)
            with self.lock:
                self.links.add(link)
            link.start()

    def forget(self, link: Link) -> None:
        with self.lock:
            self.links.discard(link)

    def take_commit_fault(self) -> bool:
        with self.lock:
            if self.commit_faults <= 0:
                return False
            self.commit_faults -= 1
            self.commits_cut += 1
            return True

    def cut_existing(self) -> None:
        with self.lock:
            links, self.links = list(self.links), set()
            held, self.held = self.held, []
        for link in links:
            link.close()
        for sock in held:
            reset(sock)

    def down(self) -> None:
        """The backend is gone: open connections are reset, new ones reset at once."""
        with self.lock:
            self.mode = "down"
        self.cut_existing()

    def blackhole(self) -> None:
        """The backend's host stops answering: connections are accepted, then silence."""
        with self.lock:
            self.mode = "blackhole"
        self.cut_existing()

    def up(self) -> None:
        """The backend is back: new connections are forwarded again."""
        with self.lock:
            self.mode = "up"
            held, self.held = self.held, []
        for sock in held:
            reset(sock)

    def cut_at_commit(self, *, delivered: bool, count: int = 1, statement: bytes = COMMIT) -> None:
        """Drop the connection of the next ``count`` transactions that send COMMIT.

        ``delivered``: the backend receives and executes the COMMIT before the cut (the
        change is stored, the client never hears so); otherwise it never sees it (the
        change is rolled back). ``statement`` cuts at another one (``ROLLBACK\x00``).
        """
        with self.lock:
            self.commit_faults = count
            self.commit_delivered = delivered
            self.cut_statement = statement

    def close(self) -> None:
        self.running = False
        reset(self.listener)
        self.up()
        self.cut_existing()
        self.thread.join(5)


# -- what clients saw, and what the database holds ----------------------------------------


@dataclass
class Write:
    """One create a client attempted: its unique key and what it was told."""

    key: str
    #: The HTTP status, or None when the connection failed before any answer.
    status: int | None
    #: The 503 problem's ``outcome`` member (``not-applied`` or ``unknown``), if any.
    outcome: str | None = None
    started: float = 0.0
    #: Seconds from sending the request to its answer (or failure).
    elapsed: float = 0.0

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def in_doubt(self) -> bool:
        """The client cannot know whether it was stored: no answer, or outcome unknown."""
        return self.status is None or self.outcome == "unknown"


@dataclass
class Audit:
    """Every attempted create against the rows found for its key.

    The contract: an acknowledged (2xx) create is stored exactly once; a refused one (any
    error answer that does not say ``outcome: unknown``) is not stored at all; one whose
    client cannot know (connection lost, or a 503 saying ``outcome: unknown``) is stored
    at most once. Nothing else is possible.
    """

    attempted: int
    acknowledged: int
    found_of_acknowledged: int
    refused: int
    stored_though_refused: list[str]
    lost: list[str]
    duplicated: list[str]
    in_doubt: int
    stored_of_in_doubt: int

    @classmethod
    def of(cls, writes: list[Write], found: dict[str, int]) -> Audit:
        acknowledged = [w for w in writes if w.acknowledged]
        refused = [w for w in writes if not w.acknowledged and not w.in_doubt]
        in_doubt = [w for w in writes if w.in_doubt]
        return cls(
            attempted=len(writes),
            acknowledged=len(acknowledged),
            found_of_acknowledged=sum(1 for w in acknowledged if found.get(w.key) == 1),
            refused=len(refused),
            stored_though_refused=[w.key for w in refused if found.get(w.key)],
            lost=[w.key for w in acknowledged if not found.get(w.key)],
            duplicated=sorted(key for key, n in found.items() if n > 1),
            in_doubt=len(in_doubt),
            stored_of_in_doubt=sum(1 for w in in_doubt if found.get(w.key)),
        )

    @property
    def holds(self) -> bool:
        return not (self.stored_though_refused or self.lost or self.duplicated)

    def figures(self) -> str:
        return (
            f"writes attempted {self.attempted}, acknowledged {self.acknowledged}, "
            f"found {self.found_of_acknowledged}/{self.acknowledged} exactly once; "
            f"refused {self.refused} (stored anyway: {len(self.stored_though_refused)}); "
            f"in doubt {self.in_doubt} (stored: {self.stored_of_in_doubt}); "
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}"
        )


class Tally:
    """Requests and answers by kind and status, shared by client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, kind: str, status: int | None) -> None:
        key = (kind, "no answer" if status is None else str(status))
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def statuses(self, kind: str | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for (k, status), n in self.counts.items():
            if kind is None or k == kind:
                out[status] = out.get(status, 0) + n
        return dict(sorted(out.items()))

    def errors(self) -> dict[str, int]:
        """Answers that are neither 2xx nor 304, by status."""
        return {
            status: n
            for status, n in self.statuses().items()
            if not (status.startswith("2") or status == "304")
        }

    def figures(self) -> str:
        kinds = sorted({k for k, _ in self.counts})
        detail = "; ".join(f"{k}: {self.statuses(k)}" for k in kinds)
        return f"requests {self.total}, errors by status {self.errors()}; {detail}"


# -- the API as the tests' clients use it ---------------------------------------------------

#: The Retry-After of the servers' 503s while their database is away.
RETRY_AFTER = "2"


def server_settings(database_url: str, **overrides: str) -> dict[str, str]:
    """Production, with the test suite's cheap hashing and generous limits, fast timeouts.

    On PostgreSQL the row cache is on, as in production.ini: its listener's connection goes
    through the same proxy and dies with the others.
    """
    return {
        **TEST_SETTINGS,
        "hyperapi.environment": "production",
        "hyperapi.row_cache.enabled": str(database_url.startswith("postgresql")).lower(),
        "sqlalchemy.url": database_url,
        "sqlalchemy.pool_size": "4",
        "sqlalchemy.connect_timeout": "1",
        "hyperapi.database.retry_after": RETRY_AFTER,
        "hyperapi.heartbeat.timeout": "2",
        **overrides,
    }


def register(server: Server) -> dict[str, str]:
    """A new user, logged in: its Bearer header."""
    name = "u" + uuid.uuid4().hex[:12]
    reply = server.request(
        "POST",
        "/api/v1/users",
        body={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert reply.status == 201, reply.body
    reply = server.request("POST", "/api/v1/tokens", headers=basic(name))
    assert reply.status == 200, reply.body
    return {"Authorization": "Bearer " + reply.json["token"], "username": name}


def bearer(account: dict[str, str]) -> dict[str, str]:
    return {"Authorization": account["Authorization"]}


def stored(database, keys: list[str]) -> dict[str, int]:
    """How many posts carry each body in ``keys``, read straight from PostgreSQL."""
    table = sa.table("posts", sa.column("body"))
    with database.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.body, sa.func.count())
            .where(table.c.body.in_(keys))
            .group_by(table.c.body)
        ).all()
    return {body: n for body, n in rows}


def consistent_counters(database) -> tuple[int, int, int]:
    """Posts, the posts collection's count, and the sum of users' post_count."""
    with database.connect() as connection:
        posts = connection.exec_driver_sql("SELECT count(*) FROM posts").scalar()
        state = connection.exec_driver_sql(
            "SELECT count FROM collection_states WHERE name = 'posts'"
        ).scalar()
        authored = connection.exec_driver_sql("SELECT sum(post_count) FROM users").scalar()
    return posts, state, authored or 0


def report(title: str, *lines: str) -> str:
    text = "\n".join([f"[{title}]", *(f"  {line}" for line in lines)])
    print("\n" + text)
    return text
