"""Transaction scripts for leases and rate counters: coordination between courriel processes.

Theory of operation
-------------------
A *lease* is a named lock with an owner and an expiry time. ``acquire`` is one upsert that
succeeds when the name is free, expired, or already held by the same owner (renewal), so two
processes racing for it get one winner from the database, not from application locks. A lease
that its holder never releases (crash, SIGKILL) frees itself when it expires; holders renew
well before that.

A *rate counter* counts events per key in fixed time windows (bucket = floor(now / window)).
Fixed windows admit up to twice the limit across a window boundary; that is accepted for
failed-login limits, which only need to make guessing slow. Old buckets are swept on each bump.
Times come from the caller (the store's ``courriel.clock.Clock``), never from the database's
``now()``, so SQLite and PostgreSQL behave the same and tests move a ``ManualClock`` instead of
waiting for a lease to expire or a window to end.

A *remembered key* is a fact with an expiry ("this account logged in from this address"): one
row of the same table in bucket ``REMEMBERED``, which no window ever uses (windows count from
0), so it needs no table of its own and the same sweep removes it once it expires.
"""

from __future__ import annotations

from courriel.store.sql.core import Done, Query, Script


def acquire_lease(name: str, owner: str, now: float, seconds: float) -> Script[Done[bool]]:
    rows = yield Query(
        "INSERT INTO leases (name, owner, expires) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires "
        "WHERE leases.expires < ? OR leases.owner = excluded.owner "
        "RETURNING owner",
        (name, owner, now + seconds, now),
    )
    return Done(bool(rows))


def release_lease(name: str, owner: str) -> Script[Done[None]]:
    yield Query("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner), rows=False)
    return Done(None)


def bump_counter(key: str, now: float, window: int) -> Script[Done[int]]:
    bucket = int(now // window)
    yield Query("DELETE FROM rate_counters WHERE expires < ?", (now,), rows=False)
    rows = yield Query(
        "INSERT INTO rate_counters (key, bucket, count, expires) VALUES (?, ?, 1, ?) "
        "ON CONFLICT (key, bucket) DO UPDATE SET count = rate_counters.count + 1 "
        "RETURNING count",
        (key, bucket, float((bucket + 1) * window)),
    )
    return Done(int(rows[0][0]))


def read_counter(key: str, now: float, window: int) -> Script[int]:
    rows = yield Query(
        "SELECT count FROM rate_counters WHERE key = ? AND bucket = ?",
        (key, int(now // window)),
    )
    return int(rows[0][0]) if rows else 0


REMEMBERED = -1  # the bucket of remembered keys; window buckets are never negative


def remember(key: str, now: float, seconds: float) -> Script[Done[None]]:
    yield Query(
        "INSERT INTO rate_counters (key, bucket, count, expires) VALUES (?, ?, 1, ?) "
        "ON CONFLICT (key, bucket) DO UPDATE SET expires = excluded.expires",
        (key, REMEMBERED, now + seconds),
        rows=False,
    )
    return Done(None)


def remembered(key: str, now: float) -> Script[float | None]:
    rows = yield Query(
        "SELECT expires FROM rate_counters WHERE key = ? AND bucket = ? AND expires >= ?",
        (key, REMEMBERED, now),
    )
    return float(rows[0][0]) if rows else None
