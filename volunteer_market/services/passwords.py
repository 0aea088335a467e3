"""Password hashing with Argon2id (OWASP minimum: m = 19 MiB, t = 2, p = 1)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
#: A hash to verify against when the user does not exist, so timing does not reveal it.
_dummy_hash: str | None = None


def configure(memory_kib: int, time_cost: int) -> None:
    """Set the Argon2id cost (tests use a cheap one)."""
    global _hasher, _dummy_hash
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
    _dummy_hash = None


def hash_password(password: str) -> str:
    """Return the Argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Return True if ``password`` matches; always spends one hash verification."""
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("not-a-password")
        password_hash = _dummy_hash
        password = password + "\x00mismatch"
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
