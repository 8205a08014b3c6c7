"""Transaction scripts of the outbound queue (``courriel.store.queue``), and the store over them.

Theory of operation
-------------------
Two tables (``migrations/*/0010_queue.sql``): ``queue_messages``, one row per entry with the
message, the lease and ``next_attempt`` (the earliest time a queued recipient is due, or now
while a report is owed, NULL once nothing is left), and ``queue_recipients``, one row per remote
recipient with its own state. ``next_attempt`` of the entry is recomputed from its recipients by
every script that changes them (``_refresh``), so "what is due" is one indexed range scan.

Leases are taken by one conditional UPDATE: it sets the owner only on rows that are still due,
unheld and unleased when the row is written. Under PostgreSQL READ COMMITTED a second node
racing for the same row waits for the first one's commit, re-checks the condition on the new row
version, finds the lease taken and skips it; under SQLite there is one writer. Either way one
entry has one worker at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from courriel.store.base import AlreadyExists, NotFound
from courriel.store.queue import (
    NewEntry,
    QueuedMessage,
    QueuedRecipient,
    RecipientState,
    RecipientUpdate,
    Report,
    wants_report,
)
from courriel.store.sql.core import Done, Query, Row, Script, T, insert_rows

if TYPE_CHECKING:
    from courriel.store.sql.store import Driver

MSG_COLS = (
    "id, sender, created, size, ret, envid, smtputf8, body_type, authenticated, held, warned,"
    " next_attempt, lease_owner, lease_expires"
)
RCPT_COLS = (
    "idx, address, domain, notify, orcpt, state, attempts, next_attempt, last_attempt, code,"
    " enhanced, reason, remote_host, report"
)
_INSERT_RCPT = ("message_id", "idx", "address", "domain", "notify", "orcpt", "state")
# A report that could not be stored (the sender's store was unavailable) is tried again after this.
REPORT_RETRY_SECONDS = 60.0


def encode_notify(notify: tuple[str, ...] | None) -> str | None:
    return None if notify is None else ",".join(notify)


def decode_notify(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(text.split(",")) if text else ()


def _recipient(row: Row) -> QueuedRecipient:
    return QueuedRecipient(
        idx=row[0],
        address=row[1],
        domain=row[2],
        notify=decode_notify(row[3]),
        orcpt=row[4],
        state=RecipientState(row[5]),
        attempts=row[6],
        next_attempt=row[7],
        last_attempt=row[8],
        code=row[9],
        enhanced=row[10],
        reason=row[11],
        remote_host=row[12],
        report=None if row[13] is None else Report(row[13]),
    )


def _message(row: Row, recipients: tuple[QueuedRecipient, ...], message: bytes) -> QueuedMessage:
    return QueuedMessage(
        id=row[0],
        sender=row[1],
        created=row[2],
        size=row[3],
        recipients=recipients,
        message=message,
        ret=row[4],
        envid=row[5],
        smtputf8=bool(row[6]),
        body_type=row[7],
        authenticated_as=row[8],
        held=bool(row[9]),
        warned=bool(row[10]),
        next_attempt=row[11],
        lease_owner=row[12],
        lease_expires=row[13],
    )


def _recipients_of(entry_id: str) -> Script[tuple[QueuedRecipient, ...]]:
    rows = yield Query(
        f"SELECT {RCPT_COLS} FROM queue_recipients WHERE message_id = ? ORDER BY idx",  # noqa: S608
        (entry_id,),
    )
    return tuple(_recipient(r) for r in rows)


def _entry(entry_id: str, *, with_message: bool) -> Script[QueuedMessage]:
    cols = MSG_COLS + (", message" if with_message else "")
    rows = yield Query(f"SELECT {cols} FROM queue_messages WHERE id = ?", (entry_id,))  # noqa: S608
    if not rows:
        raise NotFound(f"no queue entry {entry_id}")
    recipients = yield from _recipients_of(entry_id)
    return _message(rows[0], recipients, bytes(rows[0][14]) if with_message else b"")


def _refresh(entry_id: str, now: float) -> Script[bool]:
    """Recomputes the entry's ``next_attempt``; deletes a finished entry. False if deleted."""
    rows = yield Query(
        "SELECT MIN(CASE WHEN state = 'queued' THEN next_attempt END),"
        " SUM(CASE WHEN report IS NULL THEN 0 ELSE 1 END)"
        " FROM queue_recipients WHERE message_id = ?",
        (entry_id,),
    )
    due, reports = rows[0] if rows else (None, 0)
    if due is None and not reports:
        yield Query("DELETE FROM queue_recipients WHERE message_id = ?", (entry_id,), False)
        yield Query("DELETE FROM queue_messages WHERE id = ?", (entry_id,), False)
        return False
    if reports:
        retry = now + REPORT_RETRY_SECONDS
        due = retry if due is None else min(due, retry)
    yield Query("UPDATE queue_messages SET next_attempt = ? WHERE id = ?", (due, entry_id), False)
    return True


# --- the worker's scripts ------------------------------------------------------------------------


def enqueue(entry: NewEntry, now: float) -> Script[Done[str]]:
    rows = yield Query(
        "INSERT INTO queue_messages (id, sender, ret, envid, smtputf8, body_type, authenticated,"
        " created, size, message, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        (
            entry.id,
            entry.sender,
            entry.ret,
            entry.envid,
            int(entry.smtputf8),
            entry.body_type,
            entry.authenticated_as,
            now,
            len(entry.message),
            entry.message,
            now,
        ),
    )
    if not rows:
        raise AlreadyExists(f"queue entry {entry.id} exists")
    recipients = [
        (entry.id, i, r.address, r.domain, encode_notify(r.notify), r.orcpt, "queued")
        for i, r in enumerate(entry.recipients)
    ]
    yield from insert_rows(
        "queue_recipients", (*_INSERT_RCPT, "next_attempt"), [(*row, now) for row in recipients]
    )
    return Done(entry.id)


def lease_due(
    owner: str, now: float, seconds: float, limit: int
) -> Script[Done[list[QueuedMessage]]]:
    # The outer conditions repeat the inner ones: they are re-checked on the row as written.
    rows = yield Query(
        "UPDATE queue_messages SET lease_owner = ?, lease_expires = ? WHERE id IN"  # noqa: S608
        " (SELECT id FROM queue_messages WHERE held = 0 AND next_attempt <= ?"
        " AND lease_expires < ? ORDER BY next_attempt LIMIT ?)"
        " AND held = 0 AND next_attempt <= ? AND lease_expires < ?"
        f" RETURNING {MSG_COLS}, message",
        (owner, now + seconds, now, now, limit, now, now),
    )
    out = []
    for row in sorted(rows, key=lambda r: (r[11], r[0])):
        recipients = yield from _recipients_of(row[0])
        out.append(_message(row, recipients, bytes(row[14])))
    return Done(out)


def renew(entry_id: str, owner: str, now: float, seconds: float) -> Script[Done[bool]]:
    rows = yield Query(
        "UPDATE queue_messages SET lease_expires = ? WHERE id = ? AND lease_owner = ? RETURNING id",
        (now + seconds, entry_id, owner),
    )
    return Done(bool(rows))


def record(
    entry_id: str, updates: Sequence[RecipientUpdate], now: float
) -> Script[Done[QueuedMessage]]:
    for u in updates:
        yield Query(
            "UPDATE queue_recipients SET state = ?, attempts = attempts + 1, next_attempt = ?,"
            " last_attempt = ?, code = ?, enhanced = ?, reason = ?, remote_host = ?,"
            " report = COALESCE(?, report)"
            " WHERE message_id = ? AND idx = ? AND state = 'queued'",
            (
                u.state.value,
                u.next_attempt,
                now,
                u.code,
                u.enhanced,
                u.reason,
                u.remote_host,
                None if u.report is None else u.report.value,
                entry_id,
                u.idx,
            ),
            False,
        )
    return Done((yield from _entry(entry_id, with_message=False)))


def warn_delayed(entry_id: str, idxs: Sequence[int]) -> Script[Done[QueuedMessage]]:
    for idx in idxs:
        yield Query(
            "UPDATE queue_recipients SET report = 'delayed' WHERE message_id = ? AND idx = ?"
            " AND state = 'queued' AND report IS NULL",
            (entry_id, idx),
            False,
        )
    yield Query("UPDATE queue_messages SET warned = 1 WHERE id = ?", (entry_id,), False)
    return Done((yield from _entry(entry_id, with_message=False)))


def release(entry_id: str, owner: str, reported: Sequence[int], now: float) -> Script[Done[None]]:
    for idx in reported:
        yield Query(
            "UPDATE queue_recipients SET report = NULL WHERE message_id = ? AND idx = ?",
            (entry_id, idx),
            False,
        )
    if (yield from _refresh(entry_id, now)):
        yield Query(
            "UPDATE queue_messages SET lease_owner = NULL, lease_expires = 0"
            " WHERE id = ? AND lease_owner = ?",
            (entry_id, owner),
            False,
        )
    return Done(None)


def next_due() -> Script[float | None]:
    rows = yield Query(
        "SELECT MIN(CASE WHEN lease_expires > next_attempt THEN lease_expires"
        " ELSE next_attempt END) FROM queue_messages WHERE held = 0 AND next_attempt IS NOT NULL"
    )
    return None if not rows or rows[0][0] is None else float(rows[0][0])


# --- the administrator's scripts (courriel queue ...) ---------------------------------------------


def list_entries() -> Script[list[QueuedMessage]]:
    rows = yield Query(f"SELECT {MSG_COLS} FROM queue_messages ORDER BY created, id")  # noqa: S608
    recipients: dict[str, list[QueuedRecipient]] = {r[0]: [] for r in rows}
    if rows:
        found = yield Query(
            f"SELECT message_id, {RCPT_COLS} FROM queue_recipients"  # noqa: S608
            " ORDER BY message_id, idx"
        )
        for r in found:
            if r[0] in recipients:
                recipients[r[0]].append(_recipient(r[1:]))
    return [_message(r, tuple(recipients[r[0]]), b"") for r in rows]


def get(entry_id: str) -> Script[QueuedMessage]:
    return (yield from _entry(entry_id, with_message=True))


def _require(entry_id: str) -> Script[None]:
    rows = yield Query("SELECT id FROM queue_messages WHERE id = ?", (entry_id,))
    if not rows:
        raise NotFound(f"no queue entry {entry_id}")


def hold(entry_id: str, held: bool, now: float) -> Script[Done[None]]:
    yield from _require(entry_id)
    yield Query("UPDATE queue_messages SET held = ? WHERE id = ?", (int(held), entry_id), False)
    if not held:
        yield from _due_now(entry_id, now)
    return Done(None)


def _due_now(entry_id: str, now: float) -> Script[None]:
    yield Query(
        "UPDATE queue_recipients SET next_attempt = ? WHERE message_id = ? AND state = 'queued'",
        (now, entry_id),
        False,
    )
    yield from _refresh(entry_id, now)


def retry(entry_id: str | None, now: float) -> Script[Done[int]]:
    if entry_id is not None:
        yield from _require(entry_id)
        ids = [entry_id]
    else:
        ids = [r[0] for r in (yield Query("SELECT id FROM queue_messages ORDER BY id"))]
    for one in ids:
        yield from _due_now(one, now)
    return Done(len(ids))


def remove(entry_id: str) -> Script[Done[None]]:
    yield from _require(entry_id)
    yield Query("DELETE FROM queue_recipients WHERE message_id = ?", (entry_id,), False)
    yield Query("DELETE FROM queue_messages WHERE id = ?", (entry_id,), False)
    return Done(None)


def bounce(entry_id: str, reason: str, now: float) -> Script[Done[None]]:
    entry = yield from _entry(entry_id, with_message=False)
    for r in entry.recipients:
        if r.state is not RecipientState.QUEUED:
            continue
        report = "failed" if wants_report(r.notify, Report.FAILED) else None
        yield Query(
            "UPDATE queue_recipients SET state = 'failed', code = NULL, enhanced = '5.0.0',"
            " reason = ?, remote_host = '', report = COALESCE(?, report)"
            " WHERE message_id = ? AND idx = ?",
            (reason, report, entry_id, r.idx),
            False,
        )
    if (yield from _refresh(entry_id, now)):
        # The report is due at once, not after the retry delay of a failed report.
        yield Query(
            "UPDATE queue_messages SET next_attempt = ? WHERE id = ?", (now, entry_id), False
        )
    return Done(None)


# --- the QueueStore over a driver -----------------------------------------------------------------


class SqlQueueStore:
    """``courriel.store.queue.QueueStore`` for every SQL backend: the scripts above on a driver."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def _write(self, script: Script[Done[T]]) -> T:
        # Shielded as the store's own writes are: once submitted it may commit.
        done = await asyncio.shield(self._driver.write(script))
        return done.value

    async def enqueue(self, entry: NewEntry, now: float) -> str:
        return await self._write(enqueue(entry, now))

    async def lease_due(
        self, owner: str, now: float, seconds: float, limit: int
    ) -> list[QueuedMessage]:
        return await self._write(lease_due(owner, now, seconds, limit))

    async def renew(self, entry_id: str, owner: str, now: float, seconds: float) -> bool:
        return await self._write(renew(entry_id, owner, now, seconds))

    async def record(
        self, entry_id: str, updates: Sequence[RecipientUpdate], now: float
    ) -> QueuedMessage:
        return await self._write(record(entry_id, tuple(updates), now))

    async def warn_delayed(self, entry_id: str, idxs: Sequence[int]) -> QueuedMessage:
        return await self._write(warn_delayed(entry_id, tuple(idxs)))

    async def release(self, entry_id: str, owner: str, reported: Sequence[int], now: float) -> None:
        await self._write(release(entry_id, owner, tuple(reported), now))

    async def next_due(self) -> float | None:
        return await self._driver.read(next_due())

    async def list_entries(self) -> list[QueuedMessage]:
        return await self._driver.read(list_entries())

    async def get(self, entry_id: str) -> QueuedMessage:
        return await self._driver.read(get(entry_id))

    async def hold(self, entry_id: str, held: bool, now: float) -> None:
        await self._write(hold(entry_id, held, now))

    async def retry(self, entry_id: str | None, now: float) -> int:
        return await self._write(retry(entry_id, now))

    async def remove(self, entry_id: str) -> None:
        await self._write(remove(entry_id))

    async def bounce(self, entry_id: str, reason: str, now: float) -> None:
        await self._write(bounce(entry_id, reason, now))
