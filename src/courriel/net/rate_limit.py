"""Messages a minute per destination: a token bucket for each domain the relay sends to.

Theory of operation
-------------------
Large providers throttle a sender that opens too many transactions too fast (a 421 or 4xx
"try later"); ``[relay] max_messages_per_minute_per_destination`` keeps courriel under a rate
the operator chooses. ``Rates.reserve(key)`` books the next send for ``key`` (the destination
domain, or the smarthost) and says how long to wait for it. Each bucket is kept as one time,
the moment it would be empty again (the "generic cell rate algorithm"): sends are spaced
60/rate seconds apart, with a burst of up to one second's worth (at least one) when the
destination has been quiet. Booking moves that moment forward, so callers waiting together
get successive slots instead of all waking at once.

A booking further away than ``max_wait`` is refused (``None``) and nothing is booked: the
transport then answers a temporary outcome and the queue retries later on its schedule. Short
waits are slept inside the transport, so the queue worker needs no notion of rates at all; the
bound keeps one delivery from holding a worker slot and its lease for long.

The buckets live in the process: with several serving processes (or nodes on one PostgreSQL)
each keeps its own, so the rate a destination sees is at most the sum. A bucket that has
refilled carries no information and is dropped when the table grows, so it stays small.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

_PRUNE_AT = 10_000  # destinations tracked before full buckets are dropped


class Rates:
    """Token buckets keyed by destination; ``per_minute`` 0 means no limit."""

    def __init__(
        self,
        per_minute: int,
        max_wait: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.max_wait = max_wait
        self._clock = clock
        self._interval = 60.0 / per_minute if per_minute > 0 else 0.0
        burst = max(1, math.floor(per_minute / 60))  # one second's worth
        self._tolerance = (burst - 1) * self._interval
        self._empty_at: dict[str, float] = {}  # key -> when its bucket would be empty again

    def reserve(self, key: str) -> float | None:
        """Seconds to wait before sending to ``key`` (0: at once); ``None``: over ``max_wait``."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        start = max(self._empty_at.get(key, now), now)
        wait = max(0.0, start - self._tolerance - now)
        if wait > self.max_wait:
            return None
        if len(self._empty_at) >= _PRUNE_AT:
            self._empty_at = {k: t for k, t in self._empty_at.items() if t > now}
        self._empty_at[key] = start + self._interval
        return wait
