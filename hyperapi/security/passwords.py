"""Password hashing with argon2id (argon2-cffi), rehashed when the parameters change."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    """Hashes and verifies passwords with the configured argon2id parameters."""

    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4):
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._dummy: str | None = None

    @classmethod
    def from_settings(cls, settings) -> Passwords:
        return cls(
            time_cost=int(settings.get("hyperapi.argon2.time_cost", 3)),
            memory_cost=int(settings.get("hyperapi.argon2.memory_cost", 65536)),
            parallelism=int(settings.get("hyperapi.argon2.parallelism", 4)),
        )

    @property
    def dummy_hash(self) -> str:
        """A hash of nothing anyone knows, to verify against when there is no such user."""
        if self._dummy is None:
            self._dummy = self.hasher.hash("no user has this password: " + secrets.token_hex(8))
        return self._dummy

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)
