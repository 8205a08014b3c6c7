"""Transaction scripts for junk filtering: per-user token counts, training marks, the greylist.

Theory of operation
-------------------
A user's Bayesian model (``courriel.junk.bayes``) is three tables (migration 0014):
``junk_users`` (messages trained as ham and as spam, and the user's own threshold),
``junk_tokens`` (per token, in how many ham and spam messages it was seen) and
``junk_trained`` (per message digest, the class it was trained as). ``train`` is one
transaction per batch of messages: a message already trained as the same class is skipped;
one trained as the other class is first unlearned (its tokens' counts of the old class go down
by one) and then learned, so a message is never counted twice, whatever the user does with it.
Trainings of one user are serialised by a lock on their ``junk_users`` row, taken first.
Counts never go below zero and rows whose counts both reach zero are removed.

Token counts are changed with multi-row upserts (``_UPSERT_ROWS`` rows per statement, well
inside SQLite's limit on parameters) and read with ``IN`` lists of ``_READ_ROWS`` tokens, so a
message of a thousand tokens costs a handful of statements on either backend.

The greylist (``greylist_check``) keeps when a triple was first seen; a retry after the delay
and within the retry window passes and keeps the triple for the pass period, renewed by a later
pass once less than half of it is left (until then a pass is one read, no write). Times come from
the caller's clock, as for the coordination scripts.

``JunkMixin`` gives ``SqlStore`` the ``JunkStore`` methods over its driver; none of them
publishes change events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from courriel.store.base import JunkModel, JunkSample
from courriel.store.sql.core import Done, Query, Script, T

_UPSERT_ROWS = 200  # 4 parameters a row
_READ_ROWS = 500


def _ensure_user(user_id: int) -> Script[None]:
    yield Query(
        "INSERT INTO junk_users (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING",
        (user_id,),
        rows=False,
    )


def _add_counts(user_id: int, tokens: Sequence[str], ham: int, spam: int) -> Script[None]:
    """Adds ``ham`` and ``spam`` (each -1, 0 or 1) to every token's counts, never below 0."""
    for start in range(0, len(tokens), _UPSERT_ROWS):
        chunk = tokens[start : start + _UPSERT_ROWS]
        values = ", ".join("(?, ?, ?, ?)" for _ in chunk)
        params: list[object] = []
        for token in chunk:
            params += [user_id, token, max(ham, 0), max(spam, 0)]
        # A new row starts at max(delta, 0); an existing one moves by the delta, floored at 0.
        yield Query(
            f"INSERT INTO junk_tokens (user_id, token, ham, spam) VALUES {values}"  # noqa: S608
            " ON CONFLICT (user_id, token) DO UPDATE SET"
            f" ham = CASE WHEN junk_tokens.ham + {ham} < 0 THEN 0"
            f" ELSE junk_tokens.ham + {ham} END,"
            f" spam = CASE WHEN junk_tokens.spam + {spam} < 0 THEN 0"
            f" ELSE junk_tokens.spam + {spam} END",
            tuple(params),
            rows=False,
        )


def _add_totals(user_id: int, ham: int, spam: int) -> Script[None]:
    yield Query(
        "UPDATE junk_users SET"
        " ham = CASE WHEN ham + ? < 0 THEN 0 ELSE ham + ? END,"
        " spam = CASE WHEN spam + ? < 0 THEN 0 ELSE spam + ? END"
        " WHERE user_id = ?",
        (ham, ham, spam, spam, user_id),
        rows=False,
    )


def train(user_id: int, samples: Sequence[JunkSample], spam: bool) -> Script[Done[int]]:
    """Trains each sample as ``spam`` (or ham); returns how many samples changed class."""
    yield from _ensure_user(user_id)
    # A no-op update locks the user's row (PostgreSQL) before anything is read: trainings of one
    # user run one after the other, so two sessions teaching the same message at once cannot
    # both find it untrained and count it twice. SQLite serialises writers anyway.
    yield Query("UPDATE junk_users SET ham = ham WHERE user_id = ?", (user_id,), rows=False)
    changed = 0
    for sample in samples:
        rows = yield Query(
            "SELECT spam FROM junk_trained WHERE user_id = ? AND message = ?",
            (user_id, sample.digest),
        )
        if rows and bool(rows[0][0]) == spam:
            continue  # already counted as this class
        tokens = sorted(set(sample.tokens))
        sign = 1 if spam else -1
        if rows:  # trained as the other class: unlearn it first
            yield from _add_counts(user_id, tokens, -sign, sign)
            yield from _add_totals(user_id, -sign, sign)
        else:
            yield from _add_counts(user_id, tokens, int(not spam), int(spam))
            yield from _add_totals(user_id, int(not spam), int(spam))
        yield Query(
            "INSERT INTO junk_trained (user_id, message, spam) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id, message) DO UPDATE SET spam = excluded.spam",
            (user_id, sample.digest, int(spam)),
            rows=False,
        )
        changed += 1
    if changed:
        yield Query(
            "DELETE FROM junk_tokens WHERE user_id = ? AND ham = 0 AND spam = 0",
            (user_id,),
            rows=False,
        )
    return Done(changed)


def model(user_id: int, tokens: Sequence[str]) -> Script[JunkModel]:
    rows = yield Query("SELECT ham, spam, threshold FROM junk_users WHERE user_id = ?", (user_id,))
    if not rows:
        return JunkModel(0, 0, {}, None)
    ham, spam, threshold = rows[0]
    counts: dict[str, tuple[int, int]] = {}
    unique = sorted(set(tokens))
    for start in range(0, len(unique), _READ_ROWS):
        chunk = unique[start : start + _READ_ROWS]
        marks = ", ".join("?" for _ in chunk)
        found = yield Query(
            "SELECT token, ham, spam FROM junk_tokens"  # noqa: S608 - placeholders only
            f" WHERE user_id = ? AND token IN ({marks})",
            (user_id, *chunk),
        )
        for token, h, s in found:
            counts[str(token)] = (int(h), int(s))
    limit = None if threshold is None else float(threshold)
    return JunkModel(int(ham), int(spam), counts, limit)


def trained_as(user_id: int, digest: str) -> Script[bool | None]:
    rows = yield Query(
        "SELECT spam FROM junk_trained WHERE user_id = ? AND message = ?", (user_id, digest)
    )
    return None if not rows else bool(rows[0][0])


def set_threshold(user_id: int, threshold: float | None) -> Script[Done[None]]:
    yield from _ensure_user(user_id)
    yield Query(
        "UPDATE junk_users SET threshold = ? WHERE user_id = ?", (threshold, user_id), rows=False
    )
    return Done(None)


def greylist_check(
    triple: str, now: float, delay: float, retry_window: float, pass_seconds: float
) -> Script[Done[float]]:
    """Seconds the triple must still wait; 0 when it may pass (and it is kept passing)."""
    yield Query("DELETE FROM greylist WHERE expires < ?", (now,), rows=False)
    yield Query(
        "INSERT INTO greylist (triple, first_seen, passed, expires) VALUES (?, ?, 0, ?)"
        " ON CONFLICT (triple) DO NOTHING",
        (triple, now, now + retry_window),
        rows=False,
    )
    rows = yield Query("SELECT first_seen, passed FROM greylist WHERE triple = ?", (triple,))
    first_seen, passed = float(rows[0][0]), bool(rows[0][1])
    waited = now - first_seen
    if not passed and waited < delay:
        return Done(delay - waited)
    yield Query(
        "UPDATE greylist SET passed = 1, expires = ? WHERE triple = ?",
        (now + pass_seconds, triple),
        rows=False,
    )
    return Done(0.0)


def greylist_passing(triple: str, now: float, pass_seconds: float) -> Script[bool]:
    """Whether the triple passes and will for more than half its pass period: then the check
    needs no write (and no fsync) at all, which is the common case on a busy MX."""
    rows = yield Query("SELECT passed, expires FROM greylist WHERE triple = ?", (triple,))
    return bool(rows) and bool(rows[0][0]) and float(rows[0][1]) - now > pass_seconds / 2


class _Driver(Protocol):
    async def read(self, script: Script[T]) -> T: ...

    async def write(self, script: Script[T]) -> T: ...


class JunkMixin:
    """``JunkStore`` for ``SqlStore``, over the same driver."""

    _driver: _Driver

    async def _junk_write(self, script: Script[Done[T]]) -> T:
        done = await asyncio.shield(self._driver.write(script))  # may commit once submitted
        return done.value

    async def junk_model(self, user_id: int, tokens: Sequence[str]) -> JunkModel:
        return await self._driver.read(model(user_id, tokens))

    async def junk_train(self, user_id: int, samples: Sequence[JunkSample], spam: bool) -> int:
        return await self._junk_write(train(user_id, samples, spam))

    async def junk_trained_as(self, user_id: int, digest: str) -> bool | None:
        return await self._driver.read(trained_as(user_id, digest))

    async def set_junk_threshold(self, user_id: int, threshold: float | None) -> None:
        await self._junk_write(set_threshold(user_id, threshold))

    async def greylist_check(
        self, triple: str, now: float, *, delay: float, retry_window: float, pass_seconds: float
    ) -> float:
        if await self._driver.read(greylist_passing(triple, now, pass_seconds)):
            return 0.0
        return await self._junk_write(
            greylist_check(triple, now, delay, retry_window, pass_seconds)
        )
