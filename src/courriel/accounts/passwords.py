"""Password hashing with argon2id, off the event loop.

Theory of operation
-------------------
``PasswordHasher`` wraps argon2-cffi's argon2id with the costs from ``[auth]`` in the
configuration. Hashes are PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) that
carry their own parameters, so a hash made under older settings still verifies; ``needs_rehash``
says whether it was made with other parameters than the current ones.

Before hashing or verifying, a password is prepared as an RFC 8265 §4.2 OpaqueString:
non-ASCII spaces become U+0020 and the string is put in Unicode NFC, so the same password typed
on two keyboards (precomposed "é" or "e" + combining accent) gives the same hash. Control
characters are refused (RFC 8265 §4.2.2 disallows them), as is the empty password.

One argon2id verification costs tens of milliseconds of CPU and ``argon2_memory_kib`` of memory,
so the ``*_async`` methods run it on a small thread pool of our own: the event loop never
blocks, and the number of hashes in flight (hence memory) is bounded by the pool size rather
than by how many clients try to log in at once. argon2 releases the GIL while it works, so the
threads really run in parallel.

Tests use ``PasswordHasher.for_tests()`` (one pass over 8 KiB); production uses the
configuration (``from_config``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from courriel.config import AuthConfig

MAX_PASSWORD_OCTETS = 1024  # far above any real password; keeps hashing input bounded


class PasswordError(ValueError):
    """The password cannot be used (empty, too long, or holds control characters)."""


def prepare_password(password: str) -> str:
    """The RFC 8265 §4.2 OpaqueString form of ``password``; raises ``PasswordError``."""
    # RFC 8265 §4.2.1: map non-ASCII spaces to ASCII space, then NFC.
    mapped = "".join(
        " " if ch != " " and unicodedata.category(ch) == "Zs" else ch for ch in password
    )
    prepared = unicodedata.normalize("NFC", mapped)
    if not prepared:
        raise PasswordError("the password is empty")  # RFC 8265 §4.2.2: at least one character
    for ch in prepared:
        if unicodedata.category(ch) in ("Cc", "Cs"):  # RFC 8265 §4.2.2 / RFC 8264 §9.12
            raise PasswordError("the password holds a control character; remove it")
    if len(prepared.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_OCTETS:
        raise PasswordError(f"the password is longer than {MAX_PASSWORD_OCTETS} bytes")
    return prepared


class Hasher(Protocol):
    """What the authenticator needs from a password hasher."""

    @property
    def dummy_hash(self) -> str: ...

    async def verify_async(self, password_hash: str, password: str) -> bool: ...


class PasswordHasher:
    """argon2id hashing and verification with fixed cost parameters."""

    __slots__ = ("_dummy", "_executor", "_max_threads", "_ph")

    def __init__(
        self,
        *,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        max_threads: int | None = None,
    ) -> None:
        if time_cost < 1 or parallelism < 1 or memory_kib < 8 * parallelism:
            # argon2 itself needs t >= 1, p >= 1 and m >= 8 * p KiB.
            raise ValueError(
                "argon2 needs time_cost >= 1, parallelism >= 1 and memory_kib >= 8 * parallelism"
            )
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._max_threads = max_threads or os.cpu_count() or 1
        self._executor: ThreadPoolExecutor | None = None
        self._dummy: str | None = None

    @classmethod
    def from_config(cls, auth: AuthConfig) -> PasswordHasher:
        return cls(
            time_cost=auth.argon2_time_cost,
            memory_kib=auth.argon2_memory_kib,
            parallelism=auth.argon2_parallelism,
        )

    @classmethod
    def for_tests(cls, *, time_cost: int = 1) -> PasswordHasher:
        """A cheap hasher (8 KiB, one pass): the same code path, a fraction of the cost."""
        return cls(time_cost=time_cost, memory_kib=8, parallelism=1, max_threads=2)

    # --- synchronous: for the command line and for the thread pool -------------------------

    def hash(self, password: str) -> str:
        """A new salted argon2id hash of ``password``; raises ``PasswordError``."""
        return self._ph.hash(prepare_password(password))

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches ``password_hash``; any malformed input is False.

        The comparison is argon2's own, which is constant-time in the password.
        """
        try:
            prepared = prepare_password(password)
        except PasswordError:
            return False
        try:
            return self._ph.verify(password_hash, prepared)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than this hasher's."""
        try:
            return self._ph.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    @property
    def dummy_hash(self) -> str:
        """A hash of a random secret with the current costs, to verify unknown users against.

        It has the same parameters as real hashes, so verifying against it takes as long.
        """
        if self._dummy is None:
            self._dummy = self._ph.hash(secrets.token_urlsafe(24))
        return self._dummy

    # --- asynchronous: for sessions --------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._max_threads, thread_name_prefix="courriel-argon2"
            )
        return self._executor

    async def hash_async(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool(), self.hash, password)

    async def verify_async(self, password_hash: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), self.verify, password_hash, password)

    def close(self) -> None:
        """Stops the worker threads (after the hashes in flight); the hasher stays usable."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
