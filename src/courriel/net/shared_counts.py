"""Counts that every worker process sees: connections in all, per address, sessions per user.

Theory of operation
-------------------
The limits in ``[limits]`` (``max_connections``, ``max_connections_per_ip``) and the IMAP
sessions per user are meant for the whole server, not for each of its worker processes. The
workers share nothing but what was made before they were forked, so the supervisor makes one
``SharedCounts`` table in anonymous shared memory and each worker takes its own row of it
(``row(slot)``).

A worker writes only its own row and reads everybody's, so no lock is needed: a count is a
32-bit store, which no reader sees half done, and a count read a moment early or late only
moves a limit by the connections admitted in that moment. A row holds the worker's total and
``BUCKETS`` counters indexed by a keyed hash of the key (an address, a user id). Two keys can
share a counter; the key is secret and random per server start, so nobody can choose an address
that lands on another's counter, and with 16,384 counters a chance collision is rare and only
brings a per-address limit closer for both. A restarted worker clears its row before it serves:
the connections counted there died with its predecessor.

A single process (``courriel serve`` with one worker, the tests) uses a table of one row.
"""

from __future__ import annotations

import hashlib
import mmap
import secrets

BUCKETS = 16384
_WORD = 4  # bytes of one unsigned 32-bit counter


class SharedCounts:
    """One row per worker slot of total + per-key counters, in memory shared by fork."""

    def __init__(self, slots: int, buckets: int = BUCKETS) -> None:
        self.slots = max(1, slots)
        self.buckets = buckets
        self._mem = mmap.mmap(-1, self.slots * (1 + buckets) * _WORD)
        self._words = memoryview(self._mem).cast("I")
        self._key = secrets.token_bytes(16)

    def row(self, slot: int) -> CountsRow:
        return CountsRow(self, slot)

    def index(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode(), digest_size=8, key=self._key).digest()
        return 1 + int.from_bytes(digest, "little") % self.buckets

    def total(self) -> int:
        width = 1 + self.buckets
        return sum(self._words[s * width] for s in range(self.slots))

    def count_at(self, index: int) -> int:
        width = 1 + self.buckets
        return sum(self._words[s * width + index] for s in range(self.slots))

    def add_at(self, slot: int, index: int, delta: int) -> None:
        base = slot * (1 + self.buckets)
        # Clamped at 0: a release never makes a counter wrap around to four billion.
        self._words[base + index] = max(0, self._words[base + index] + delta)
        self._words[base] = max(0, self._words[base] + delta)

    def clear(self, slot: int) -> None:
        width = 1 + self.buckets
        self._mem[slot * width * _WORD : (slot + 1) * width * _WORD] = bytes(width * _WORD)


class CountsRow:
    """A worker's view: it counts into its own row and reads the sum over all rows."""

    def __init__(self, table: SharedCounts, slot: int) -> None:
        self.table = table
        self.slot = slot

    def reset(self) -> None:
        self.table.clear(self.slot)

    def add(self, key: str, delta: int) -> None:
        self.table.add_at(self.slot, self.table.index(key), delta)

    def count(self, key: str) -> int:
        """How many are counted under ``key`` in all workers (or under a key sharing its
        counter)."""
        return self.table.count_at(self.table.index(key))

    def total(self) -> int:
        return self.table.total()


def local_counts() -> CountsRow:
    """A table of one row, for a process that serves alone."""
    return SharedCounts(1).row(0)
