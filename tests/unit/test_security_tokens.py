"""Bearer tokens: signing, expiry, key rotation, tampering (hyperapi.security.tokens)."""

from __future__ import annotations

import datetime as dt
import string
import time

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from hyperapi.security.identity import AuthenticationFailed
from hyperapi.security.tokens import SALT, TokenService

OLD = "old-secret-" + "o" * 32
NEW = "new-secret-" + "n" * 32


def reason(service: TokenService, token: str) -> str:
    with pytest.raises(AuthenticationFailed) as failure:
        service.verify(token)
    return failure.value.reason


def at(monkeypatch, timestamp: int) -> None:
    """Move itsdangerous' clock (used to sign and to check the age) to ``timestamp``."""
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: timestamp)


def test_a_token_carries_user_generation_a_random_id_and_its_expiry():
    service = TokenService([NEW], 3600)
    first = service.verify(service.issue(7, 3))
    second = service.verify(service.issue(7, 3))
    assert (first.user_id, first.generation) == (7, 3)
    assert first.token_id != second.token_id
    assert (first.expires_at - first.issued_at).total_seconds() == 3600


def test_a_token_is_valid_up_to_its_lifetime_and_expired_one_second_later(monkeypatch):
    service = TokenService([NEW], 60)
    now = int(time.time())
    at(monkeypatch, now)
    token = service.issue(1, 0)
    at(monkeypatch, now + 60)
    assert service.verify(token).user_id == 1
    at(monkeypatch, now + 61)
    assert reason(service, token) == "the token has expired"


def test_a_token_is_accepted_until_one_second_after_its_expiry(monkeypatch):
    # How long a revocation must be remembered (TokenClaims.accepted_until).
    service = TokenService([NEW], 60)
    now = int(time.time())
    at(monkeypatch, now)
    token = service.issue(1, 0)
    claims = service.verify(token)
    assert claims.accepted_until - claims.expires_at == dt.timedelta(seconds=1)
    until = int(claims.accepted_until.timestamp())
    at(monkeypatch, until - 1)  # its last second: remembered, and verified anew
    assert service.verify(token).user_id == TokenService([NEW], 60).verify(token).user_id == 1
    at(monkeypatch, until)
    assert (
        reason(service, token)
        == reason(TokenService([NEW], 60), token)
        == ("the token has expired")
    )


def test_the_newest_secret_signs_and_every_listed_secret_verifies():
    rotated = TokenService([NEW, OLD], 3600)
    token = rotated.issue(1, 0)
    assert TokenService([NEW], 3600).verify(token).user_id == 1
    assert reason(TokenService([OLD], 3600), token) == "the token is not valid"


def test_a_token_signed_with_a_retired_but_listed_secret_still_verifies():
    before_rotation = TokenService([OLD], 3600).issue(1, 0)
    assert TokenService([NEW, OLD], 3600).verify(before_rotation).user_id == 1


def test_a_token_signed_with_a_secret_no_longer_listed_is_refused():
    before_rotation = TokenService([OLD], 3600).issue(1, 0)
    assert reason(TokenService([NEW], 3600), before_rotation) == "the token is not valid"


URLSAFE_B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def flip(token: str, position: int) -> str:
    """Flip the high bit of one base64 character (the low bits of the last may be unused)."""
    position %= len(token)
    old = token[position]
    new = URLSAFE_B64[URLSAFE_B64.index(old) ^ 32] if old in URLSAFE_B64 else "A"
    return token[:position] + new + token[position + 1 :]


@pytest.mark.parametrize("position", [0, 10, -1, -10], ids=["start", "payload", "end", "mac"])
def test_a_tampered_token_is_refused(position):
    service = TokenService([NEW], 3600)
    token = service.issue(1, 0)
    assert reason(service, flip(token, position)) == "the token is not valid"


def test_a_payload_signed_for_another_purpose_is_not_a_token():
    # Same secret, other salt (e.g. a paging cursor): the salt keeps purposes apart.
    other_purpose = URLSafeTimedSerializer(NEW, salt="hyperapi.paging.cursor")
    forged = other_purpose.dumps({"u": 1, "j": "x", "g": 0})
    assert reason(TokenService([NEW], 3600), forged) == "the token is not valid"
    untimed = URLSafeSerializer(NEW, salt=SALT).dumps({"u": 1, "j": "x", "g": 0})
    assert reason(TokenService([NEW], 3600), untimed) == "the token is not valid"


@pytest.mark.parametrize("payload", [{"u": 1}, {"u": "x", "j": "y", "g": 0}, [1, 2, 3], "text"])
def test_a_well_signed_token_with_a_wrong_payload_is_refused(payload):
    token = URLSafeTimedSerializer(NEW, salt=SALT).dumps(payload)
    assert reason(TokenService([NEW], 3600), token) == "the token is not valid"


def test_an_overlong_token_is_refused_before_any_signature_check():
    assert reason(TokenService([NEW], 3600), "a" * 2000) == "the token is malformed"


def test_a_token_service_needs_a_secret():
    with pytest.raises(ValueError):
        TokenService([], 3600)
