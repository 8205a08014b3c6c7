"""A memory of recent successful password verifications, so a client that logs in every minute
does not cost an argon2id run every minute.

Theory of operation
-------------------
As Dovecot's auth cache does, an entry is remembered under a key, never the password:

    key = HMAC-SHA256(secret, address NUL password NUL current password hash)

``secret`` is 32 random bytes made when the cache is built; it is never written, logged or sent
anywhere, so a key is useless for testing password guesses outside this process. Someone who can
read this process's memory gets the secret too and could test guesses at HMAC speed, but they can
equally read passwords as clients send them, so the cache gives them nothing new. The stored
password hash is part
of the key, so changing a password changes every key for that user: old entries are simply
never found again and age out, with no invalidation message to send between processes.

Entries expire ``ttl`` seconds after they were remembered (``[auth] cache_seconds``; 0 turns
the cache off) and the cache holds at most ``max_entries`` keys, dropping the least recently
used first. Time comes from an injected clock returning monotonic seconds, so tests move time
instead of sleeping.

The cache only ever holds successes: a wrong password is verified in full every time, which is
the cost we want a password guesser to pay.

Each process has its own cache. That is allowed by the rule that state another worker needs
must not live in one process: no other worker needs it, a miss only costs one verification.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_MAX_ENTRIES = 100_000  # 100k entries of ~100 bytes: a few MB at most


class AuthCache:
    """LRU set of HMAC keys of (address, password, hash) triples that verified, with expiry."""

    __slots__ = ("_clock", "_entries", "_max_entries", "_secret", "_ttl")

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        secret: bytes | None = None,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must not be negative")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        # key -> monotonic time at which it expires; order is least recently used first
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, address: str, password: str, password_hash: str) -> bytes | None:
        """The cache key of a triple, or None when it cannot be keyed unambiguously.

        NUL separates the fields. The address and the hash never hold NUL (addresses refuse
        control characters, PHC strings are ASCII text), so the split is unique even when the
        password holds one; a triple that breaks this is simply never cached.
        """
        if "\0" in address or "\0" in password_hash:
            return None
        message = "\0".join((address, password, password_hash)).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def hit(self, address: str, password: str, password_hash: str) -> bool:
        """True when this triple verified within the last ``ttl`` seconds."""
        if not self.enabled:
            return False
        key = self.key(address, password, password_hash)
        if key is None:
            return False
        expires = self._entries.get(key)
        if expires is None:
            return False
        if self._clock() >= expires:
            del self._entries[key]
            return False
        self._entries.move_to_end(key)
        return True

    def remember(self, address: str, password: str, password_hash: str) -> None:
        """Records that the triple verified just now."""
        if not self.enabled:
            return
        key = self.key(address, password, password_hash)
        if key is None:
            return
        now = self._clock()
        self._entries[key] = now + self._ttl
        self._entries.move_to_end(key)
        self._evict(now)

    def _evict(self, now: float) -> None:
        # Expired entries at the cold end go first, then the least recently used beyond the cap.
        while self._entries:
            oldest_key, expires = next(iter(self._entries.items()))
            if expires > now and len(self._entries) <= self._max_entries:
                break
            del self._entries[oldest_key]

    def clear(self) -> None:
        self._entries.clear()
