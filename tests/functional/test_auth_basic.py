"""HTTP Basic against argon2id hashes: challenges, the verification cache, rehashing."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa
from argon2 import extract_parameters
from webtest import TestApp

from hyperapi.models import User
from hyperapi.security.passwords import Passwords
from tests.conftest import PASSWORD, basic

HOST = {"HTTP_HOST": "api.example.com"}
CHALLENGES = 'Bearer realm="hyperapi", Basic realm="hyperapi", charset="UTF-8"'


@pytest.fixture
def verifications(monkeypatch) -> list[str]:
    """Every argon2 verification the application performs, by hash."""
    calls: list[str] = []
    original = Passwords.verify

    def counting(self, password_hash, password):
        calls.append(password_hash)
        return original(self, password_hash, password)

    monkeypatch.setattr(Passwords, "verify", counting)
    return calls


def stored_hash(app, user_id: int) -> str:
    with app.registry.database.engine.connect() as connection:
        query = sa.select(User.password_hash).where(User.id == user_id)
        return connection.execute(query).scalar_one()


def test_basic_credentials_authenticate_the_user(testapp, alice):
    response = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    assert response.json["email"] == "alice@example.com"


def test_the_username_is_matched_without_regard_to_case(testapp, alice):
    response = testapp.get(f"/api/v1/users/{alice['id']}", headers=basic("ALICE"))
    assert response.json["username"] == "alice"


def test_a_utf8_password_is_accepted(testapp, accounts):
    account = accounts.create("zoe", password="pässwörd-ünïcode")
    assert testapp.get("/api/v1/users", headers=account["auth"]).status_int == 200


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (
            basic("alice", "wrong password")["Authorization"],
            "the username or password is not valid",
        ),
        (basic("nobody")["Authorization"], "the username or password is not valid"),
        (basic("")["Authorization"], "the username or password is not valid"),
        (basic("alice", "x" * 300)["Authorization"], "the username or password is not valid"),
        ("Basic !!!not-base64!!!", "the Basic credentials are malformed"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "the Basic credentials are malformed"),
        ("Digest username=alice", "the Authorization scheme is not one this server accepts"),
    ],
    ids=[
        "wrong-password",
        "unknown-user",
        "empty-user",
        "overlong",
        "bad-b64",
        "no-colon",
        "digest",
    ],
)
def test_bad_credentials_are_401_with_a_challenge_per_scheme(
    testapp, alice, authorization, detail
):
    response = testapp.get("/api/v1/users", headers={"Authorization": authorization}, status=401)
    assert response.content_type == "application/problem+json"
    assert response.json["type"] == "/api/v1/problems/unauthenticated"
    assert response.json["detail"] == f"Authentication failed: {detail}."
    assert response.headers["WWW-Authenticate"] == CHALLENGES
    assert "Authorization" in response.headers["Vary"]


def test_the_realm_comes_from_settings_and_is_quoted(app_factory, testapp):
    client = TestApp(app_factory(**{"hyperapi.auth.realm": 'Team "A"'}), extra_environ=HOST)
    response = client.get("/api/v1/users", status=401)
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="Team \\"A\\"", Basic realm="Team \\"A\\"", charset="UTF-8"'
    )


def test_an_unknown_user_costs_a_hash_verification_like_a_known_one(testapp, alice, verifications):
    testapp.get("/api/v1/users", headers=basic("nobody"), status=401)
    testapp.get("/api/v1/users", headers=basic("alice", "wrong password"), status=401)
    # Both verified one argon2 hash: timing does not tell which usernames exist.
    assert len(verifications) == 2


def test_a_successful_verification_is_cached_briefly(testapp, alice, verifications):
    for _ in range(3):
        testapp.get("/api/v1/users", headers=alice["auth"])
    assert len(verifications) == 1


def test_failed_verifications_are_never_cached(testapp, alice, verifications):
    for _ in range(3):
        testapp.get("/api/v1/users", headers=basic("alice", "wrong password"), status=401)
    assert len(verifications) == 3


def test_the_cache_holds_neither_the_password_nor_anything_it_can_be_read_from(
    app, testapp, alice
):
    entries = app.registry.verification_cache.entries
    entries.clear()  # the application outlives each test
    testapp.get("/api/v1/users", headers=alice["auth"])
    assert len(entries) == 1
    [(key, (_, value))] = entries.items()
    assert PASSWORD not in key and PASSWORD not in value
    assert value == stored_hash(app, alice["id"])
    # The key is an HMAC under the server secret: 64 hex digits, no username or password.
    assert len(key) == 64 and "alice" not in key


def test_a_password_change_invalidates_the_cached_verification(testapp, alice, verifications):
    testapp.get("/api/v1/users", headers=alice["auth"])
    testapp.patch_json(
        f"/api/v1/users/{alice['id']}", {"password": "the new password"}, headers=alice["auth"]
    )
    testapp.get("/api/v1/users", headers=alice["auth"], status=401)
    assert (
        testapp.get("/api/v1/users", headers=basic("alice", "the new password")).status_int == 200
    )


def test_a_cache_ttl_of_zero_verifies_every_request(app_factory, testapp, alice, verifications):
    client = TestApp(
        app_factory(**{"hyperapi.auth.verification_cache_ttl": "0"}), extra_environ=HOST
    )
    client.get("/api/v1/users", headers=alice["auth"])
    client.get("/api/v1/users", headers=alice["auth"])
    assert len(verifications) == 2


@pytest.fixture(scope="module")
def stronger_app(app_factory):
    """The same database, with argon2 parameters raised since the accounts were created."""
    return app_factory(**{"hyperapi.argon2.time_cost": "2", "hyperapi.argon2.memory_cost": "16"})


def test_a_get_with_an_outdated_hash_rehashes_it_and_answers_as_usual(
    app, stronger_app, testapp, alice
):
    client = TestApp(stronger_app, extra_environ=HOST)
    old_hash = stored_hash(app, alice["id"])
    assert extract_parameters(old_hash).time_cost == 1
    before = testapp.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])

    response = client.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])

    assert response.json == before.json
    new_hash = stored_hash(app, alice["id"])
    parameters = extract_parameters(new_hash)
    assert (parameters.time_cost, parameters.memory_cost) == (2, 16)
    assert Passwords(time_cost=2, memory_cost=16, parallelism=1).verify(new_hash, PASSWORD)
    # The representation did not change, so neither do its validators.
    after = client.get(f"/api/v1/users/{alice['id']}", headers=alice["auth"])
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]


def test_a_write_with_an_outdated_hash_rehashes_it_too(app, stronger_app, testapp, alice):
    client = TestApp(stronger_app, extra_environ=HOST)
    client.post("/api/v1/tokens", headers=alice["auth"])
    assert extract_parameters(stored_hash(app, alice["id"])).time_cost == 2


def test_a_failed_login_does_not_rehash(app, stronger_app, alice):
    client = TestApp(stronger_app, extra_environ=HOST)
    old_hash = stored_hash(app, alice["id"])
    client.get("/api/v1/users", headers=basic("alice", "wrong password"), status=401)
    assert stored_hash(app, alice["id"]) == old_hash


def test_a_current_hash_is_left_alone(app, testapp, alice):
    old_hash = stored_hash(app, alice["id"])
    testapp.get("/api/v1/users", headers=alice["auth"])
    testapp.post("/api/v1/tokens", headers=alice["auth"])
    assert stored_hash(app, alice["id"]) == old_hash


def test_a_cached_verification_is_compared_in_constant_time(app, testapp, alice, compared):
    testapp.get("/api/v1/users", headers=alice["auth"])
    testapp.get("/api/v1/users", headers=alice["auth"])
    password_hash = stored_hash(app, alice["id"])
    assert (password_hash, password_hash) in compared
