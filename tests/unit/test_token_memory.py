"""The per-process memory of verified tokens (hyperapi.security.tokens.TokenService)."""

from __future__ import annotations

import pytest
from itsdangerous.timed import TimestampSigner

from hyperapi.security.identity import AuthenticationFailed
from hyperapi.security.tokens import TokenService

SECRET = "token-memory-secret-" + "m" * 32


@pytest.fixture
def loads(monkeypatch):
    """Count the signature checks (itsdangerous loads) a service makes."""
    calls = []

    def counting(service: TokenService):
        original = service.serializer.loads

        def wrapper(*args, **kwargs):
            calls.append(args[0])
            return original(*args, **kwargs)

        monkeypatch.setattr(service.serializer, "loads", wrapper)
        return calls

    return counting


def test_a_verified_token_is_not_checked_again(loads):
    service = TokenService([SECRET], 3600)
    token = service.issue(7, 0)
    calls = loads(service)
    first, second = service.verify(token), service.verify(token)
    assert first == second
    assert calls == [token]


def test_a_remembered_token_still_expires_to_the_second_on_the_signers_clock(monkeypatch):
    service = TokenService([SECRET], 60)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_000_000)
    token = service.issue(7, 0)
    service.verify(token)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_000_060)
    assert service.verify(token).user_id == 7  # remembered, and 60 s old is still valid
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_000_061)
    with pytest.raises(AuthenticationFailed) as failure:
        service.verify(token)
    assert failure.value.reason == "the token has expired"
    assert token not in service.verified


def test_a_token_signed_in_the_future_is_refused_even_when_remembered(monkeypatch):
    service = TokenService([SECRET], 60)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 1_000_000)
    token = service.issue(7, 0)
    service.verify(token)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: 999_999)
    with pytest.raises(AuthenticationFailed):
        service.verify(token)


@pytest.mark.parametrize("bad", ["not a token", "a.b.c"])
def test_a_token_that_does_not_verify_is_never_remembered(bad, loads):
    service = TokenService([SECRET], 3600)
    calls = loads(service)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            service.verify(bad)
    assert calls == [bad, bad]
    assert service.verified == {}


def test_a_tampered_copy_of_a_remembered_token_is_checked_and_refused():
    service = TokenService([SECRET], 3600)
    token = service.issue(7, 0)
    service.verify(token)
    with pytest.raises(AuthenticationFailed):
        service.verify(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))


def test_the_memory_is_bounded_and_forgets_the_oldest_first():
    service = TokenService([SECRET], 3600, max_entries=2)
    tokens = [service.issue(user, 0) for user in (1, 2, 3)]
    for token in tokens:
        service.verify(token)
    assert list(service.verified) == tokens[1:]
    assert service.verify(tokens[0]).user_id == 1  # verified again, not lost
