"""argon2id hashing, rehash detection and the verification cache."""

from __future__ import annotations

from hyperapi.security.cache import MemoryCache
from hyperapi.security.passwords import Passwords

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


def test_a_hash_is_argon2id_salted_and_verifies_only_its_password():
    passwords = Passwords(**CHEAP)
    first, second = passwords.hash("s3cret-pass"), passwords.hash("s3cret-pass")
    assert first.startswith("$argon2id$") and first != second
    assert passwords.verify(first, "s3cret-pass")
    assert not passwords.verify(first, "s3cret-pasS")


def test_a_malformed_hash_verifies_nothing():
    assert not Passwords(**CHEAP).verify("not-a-hash", "anything")


def test_a_hash_made_with_other_parameters_needs_rehash():
    old = Passwords(**CHEAP).hash("s3cret-pass")
    stronger = Passwords(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_rehash(old)
    assert stronger.verify(old, "s3cret-pass")
    assert not stronger.needs_rehash(stronger.hash("s3cret-pass"))


def test_the_dummy_hash_is_stable_and_matches_no_guess():
    passwords = Passwords(**CHEAP)
    assert passwords.dummy_hash == passwords.dummy_hash
    assert not passwords.verify(passwords.dummy_hash, "")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_the_verification_cache_forgets_entries_after_their_ttl():
    clock = Clock()
    cache = MemoryCache(clock=clock)
    cache.set("k", "hash", 60)
    clock.now += 59.9
    assert cache.get("k") == "hash"
    clock.now += 0.1
    assert cache.get("k") is None


def test_the_verification_cache_is_bounded_and_drops_the_least_recently_used():
    cache = MemoryCache(max_entries=2)
    cache.set("a", "1", 60)
    cache.set("b", "2", 60)
    cache.get("a")
    cache.set("c", "3", 60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("1", None, "3")
