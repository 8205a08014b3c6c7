"""When to try a queued recipient again, and when to give up: a pure function of time.

Theory of operation
-------------------
RFC 5321 §4.5.4.1 asks a sender to wait at least 30 minutes between tries to one destination
and to keep trying for 4-5 days; Postfix's defaults fit that shape and are courriel's too: the
first retry ``first_retry_seconds`` (300) after the first temporary failure, each later wait
twice the one before, up to ``max_retry_seconds`` (4000, about an hour), and after
``give_up_seconds`` (5 days) since the message was queued it is returned to its sender. The last
try is moved to the moment of expiry rather than past it, so a message is never held longer than
configured, and a failure at or after that moment is final.

``after_failure`` is the whole decision; it reads no clock and no store, so a table test covers
it. ``delay_warning_due`` says when the one "still trying" notice (RFC 3464 Action: delayed)
is owed.
"""

from __future__ import annotations

from dataclasses import dataclass

from courriel.config import QueueConfig


@dataclass(frozen=True, slots=True)
class Retry:
    at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class Expire:
    after_seconds: float  # how long the message was in the queue


def retry_delay(attempts: int, cfg: QueueConfig) -> float:
    """The wait after the ``attempts``-th try failed (attempts >= 1)."""
    # The exponent is bounded so a recipient tried thousands of times cannot overflow a float.
    doubled = cfg.first_retry_seconds * 2.0 ** min(max(attempts - 1, 0), 60)
    return min(doubled, cfg.max_retry_seconds)


def after_failure(attempts: int, created: float, now: float, cfg: QueueConfig) -> Retry | Expire:
    """What follows a temporary failure of try number ``attempts`` at ``now``."""
    deadline = created + cfg.give_up_seconds
    if now >= deadline:
        return Expire(now - created)  # RFC 5321 §4.5.4.1: give up after the configured time
    return Retry(min(now + retry_delay(attempts, cfg), deadline))


def delay_warning_due(created: float, now: float, warned: bool, cfg: QueueConfig) -> bool:
    """Whether the one delay warning is owed now (never when configured to 0)."""
    if warned or cfg.delay_warning_seconds <= 0:
        return False
    return now - created >= cfg.delay_warning_seconds
