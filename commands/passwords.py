"""Argon2id hashing of the temporary passwords (``commands.ports.PasswordHasher``).

argon2-cffi releases the GIL while hashing, so the gateway's worker threads hash on every core
at once. Parameters come from ``[reset]``; the default (19 MiB, 2 passes, 1 lane) is OWASP's
recommended minimum for Argon2id.
"""

from __future__ import annotations

import argon2


class Argon2idHasher:
    """Hashes and verifies passwords with Argon2id and the configured cost."""

    def __init__(self, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
