"""One contract for every revocation store (STYLE.md 9): memory, database, Redis.

Each store is exercised as the token views use it, through a request whose ``dbsession``
is a fresh session; "another process" is a second store instance (and session) built on
the same backing service.
"""

from __future__ import annotations

import datetime as dt
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from zope.interface.verify import verifyObject

from hyperapi.interfaces import IRevocations
from hyperapi.models import RevokedToken
from hyperapi.models.meta import utcnow
from hyperapi.security.tokens import DatabaseRevocations, MemoryRevocations, RedisRevocations
from hyperapi.settings import ConfigurationError
from tests.conftest import REDIS_PREFIX

STORES = ["memory", "database", "redis"]


class Harness:
    """Builds stores of one kind and runs each call in its own committed transaction."""

    def __init__(self, kind: str, app, redis_url: str | None):
        self.kind = kind
        self.app = app
        self.redis_url = redis_url
        self.shared_memory = MemoryRevocations()
        self.redis_stores: list[RedisRevocations] = []

    def store(self):
        if self.kind == "memory":
            return self.shared_memory  # one process: the same object
        if self.kind == "database":
            return DatabaseRevocations(self.app.registry)
        # This test session's keys only: closing deletes them (REDIS_PREFIX, conftest).
        registry = SimpleNamespace(
            settings={
                "hyperapi.redis.url": self.redis_url,
                "hyperapi.auth.revocations_key_prefix": f"{REDIS_PREFIX}:revoked:",
            }
        )
        store = RedisRevocations(registry)
        self.redis_stores.append(store)
        return store

    def close(self) -> None:
        for store in self.redis_stores:
            for key in store.client.scan_iter(match=store.prefix + "*"):
                store.client.delete(key)
            store.close()

    @contextmanager
    def request(self):
        database = self.app.registry.database
        with database.write_sessions() as session, session.begin():
            yield SimpleNamespace(dbsession=session)

    def revoke(self, store, token_id, expires_at):
        with self.request() as request:
            store.revoke(request, token_id, expires_at)

    def is_revoked(self, store, token_id) -> bool:
        with self.request() as request:
            return store.is_revoked(request, token_id)


@pytest.fixture(params=STORES)
def harness(request, app, clean):
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    harness = Harness(request.param, app, redis_url)
    yield harness
    harness.close()


def token_id() -> str:
    return uuid.uuid4().hex


def in_(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


def test_the_store_provides_the_interface(harness):
    assert verifyObject(IRevocations, harness.store())


def test_a_token_is_not_revoked_until_it_is(harness):
    store, ident = harness.store(), token_id()
    assert not harness.is_revoked(store, ident)
    harness.revoke(store, ident, in_(3600))
    assert harness.is_revoked(store, ident)


def test_revoking_one_token_leaves_the_others_valid(harness):
    store, revoked, other = harness.store(), token_id(), token_id()
    harness.revoke(store, revoked, in_(3600))
    assert not harness.is_revoked(store, other)


def test_a_revocation_is_seen_by_another_instance_of_the_store(harness):
    ident = token_id()
    harness.revoke(harness.store(), ident, in_(3600))
    assert harness.is_revoked(harness.store(), ident)


def test_revoking_twice_is_harmless(harness):
    store, ident = harness.store(), token_id()
    harness.revoke(store, ident, in_(3600))
    harness.revoke(store, ident, in_(3600))
    assert harness.is_revoked(store, ident)


def test_revoking_twice_in_one_transaction_is_harmless(harness):
    store, ident = harness.store(), token_id()
    with harness.request() as request:
        store.revoke(request, ident, in_(3600))
        store.revoke(request, ident, in_(3600))
    assert harness.is_revoked(store, ident)


def test_a_token_that_has_already_expired_is_not_kept(harness):
    store, ident = harness.store(), token_id()
    harness.revoke(store, ident, in_(-1))
    assert not harness.is_revoked(store, ident)


def test_a_revocation_expires_with_its_token(harness, monkeypatch):
    store, ident = harness.store(), token_id()
    harness.revoke(store, ident, in_(1.5))
    assert harness.is_revoked(store, ident)
    if harness.kind == "redis":
        # Redis expires keys by itself: check the TTL it was given rather than wait.
        ttl = store.client.ttl(store.prefix + ident)
        assert 1 <= ttl <= 2
        return
    later = utcnow() + dt.timedelta(seconds=2)
    monkeypatch.setattr("hyperapi.security.tokens.utcnow", lambda: later)
    if harness.kind == "memory":
        store.clock = lambda: later
    assert not harness.is_revoked(store, ident)


def test_the_database_store_purges_rows_of_expired_tokens(app, clean):
    store = DatabaseRevocations(app.registry)
    harness = Harness("database", app, None)
    harness.revoke(store, "expired", in_(3600))
    later = utcnow() + dt.timedelta(seconds=7200)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("hyperapi.security.tokens.utcnow", lambda: later)
        harness.revoke(store, "fresh", later + dt.timedelta(seconds=60))
    with harness.request() as request:
        rows = request.dbsession.execute(sa.select(RevokedToken.token_id)).scalars()
        assert sorted(rows) == ["fresh"]


def test_the_redis_store_needs_a_url():
    registry = SimpleNamespace(settings={"hyperapi.redis.url": ""})
    with pytest.raises(ConfigurationError, match=r"hyperapi\.redis\.url"):
        RedisRevocations(registry)
