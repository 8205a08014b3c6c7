"""Building blocks of the store's transaction scripts: the query type, value codecs, sub-scripts.

Theory of operation
-------------------
Everything here is pure: values in the form the tables keep them (flags as a bit mask plus
keywords, dates as ISO 8601 text, addresses with a lower-case key) and small scripts that other
scripts run with ``yield from`` (lock a mailbox, allocate UIDs and a MODSEQ, count blob references,
charge quota, log expunges). See ``courriel.store.sql`` for how scripts are run.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Generic, TypeVar

from courriel.mail import flags as mailflags
from courriel.store.base import (
    AlreadyExists,
    Change,
    ChangeKind,
    Mailbox,
    MessageInfo,
    NotFound,
    OverQuota,
    StoreError,
)

T = TypeVar("T")
Row = tuple[Any, ...]
Rows = list[Row]


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: tuple[Any, ...] = ()
    rows: bool = True  # False: the driver may execute without fetching


# A script yields queries, receives rows, returns T.
Script = Generator[Query, Rows, T]


@dataclass(frozen=True, slots=True)
class Done(Generic[T]):
    """A write script's result and its after-commit duties."""

    value: T
    changes: tuple[Change, ...] = ()
    freed_blobs: tuple[str, ...] = ()  # body files this script left unreferenced (to delete)
    new_files: tuple[str, ...] = ()  # body files that got their first reference (see append)


# --- values ----------------------------------------------------------------------------------

# How the system flags are kept: one bit each in ``messages.sysflags``. The numbers are on disk
# in every database: never renumber them.
FLAG_BITS: dict[str, int] = {
    "\\Seen": 1,
    "\\Answered": 2,
    "\\Flagged": 4,
    "\\Deleted": 8,
    "\\Draft": 16,
}
assert set(FLAG_BITS) == set(mailflags.SYSTEM_FLAGS), "a system flag without its bit"
_RECENT = mailflags.RECENT.casefold()
SEEN = FLAG_BITS["\\Seen"]
DELETED = FLAG_BITS["\\Deleted"]
INBOX = "INBOX"
# Highest UID IMAP can name (RFC 9051 §2.3.1.1: nz-number is 32-bit).
MAX_UID = 0xFFFFFFFF


def normalise_flags(flags: Iterable[str]) -> frozenset[str]:
    """System flags in their canonical spelling (they are case-insensitive), "\\Recent" dropped."""
    # RFC 9051 §2.3.2: \Recent is gone; RFC 3501 keeps it per session, never stored
    canonical = (mailflags.canonical(flag) for flag in flags)
    return frozenset(f for f in canonical if f.casefold() != _RECENT)


def encode_flags(flags: frozenset[str]) -> tuple[int, str]:
    bits = 0
    keywords = []
    for flag in flags:
        bit = FLAG_BITS.get(flag)
        if bit is None:
            keywords.append(flag)
        else:
            bits |= bit
    return bits, " ".join(sorted(keywords))


@functools.lru_cache(maxsize=4096)
def decode_flags(bits: int, keywords: str) -> frozenset[str]:
    # Few distinct combinations exist in a mailbox; caching shares the frozensets.
    out = {name for name, bit in FLAG_BITS.items() if bits & bit}
    if keywords:
        out.update(keywords.split(" "))
    return frozenset(out)


def mailbox_name(name: str) -> str:
    """INBOX, also as the first level of a hierarchy, in its one stored spelling."""
    head, sep, rest = name.partition("/")
    if head.upper() == INBOX:  # RFC 9051 §5.1: INBOX is case-insensitive
        return INBOX + sep + rest
    return name


def address_key(address: str) -> str:
    return address.lower()


def domain_of(address: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise StoreError(f"not an address: {address!r}")
    return domain.lower()


def uid_ranges(uids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges: "1:*" becomes one range, not a million parameters."""
    out: list[tuple[int, int]] = []
    for uid in sorted(set(uids)):
        if out and uid == out[-1][1] + 1:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return out


_RANGES_PER_QUERY = 200
ROWS_PER_INSERT = 100


def range_filters(ranges: Sequence[tuple[int, int]]) -> Iterable[tuple[str, tuple[int, ...]]]:
    for i in range(0, len(ranges), _RANGES_PER_QUERY):
        chunk = ranges[i : i + _RANGES_PER_QUERY]
        clause = " OR ".join(["uid BETWEEN ? AND ?"] * len(chunk))
        yield f"({clause})", tuple(v for pair in chunk for v in pair)


def date_of(text: str) -> datetime:
    return datetime.fromisoformat(text)


MESSAGE_COLS = "uid, modseq, sysflags, keywords, internal_date, size"


def message_info(row: Row) -> MessageInfo:
    # fromisoformat directly: a call less per message of a listing (date_of is the same)
    date = datetime.fromisoformat(row[4])
    return MessageInfo(row[0], row[1], decode_flags(row[2], row[3]), date, row[5])


# --- shared sub-scripts ----------------------------------------------------------------------


def insert_rows(table: str, cols: Sequence[str], rows: Sequence[Row]) -> Script[None]:
    """Multi-row INSERT in chunks: one statement per hundred rows, not one per row."""
    head = f"INSERT INTO {table} ({', '.join(cols)}) VALUES "  # noqa: S608 - constant names
    one = "(" + ", ".join("?" * len(cols)) + ")"
    for i in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[i : i + ROWS_PER_INSERT]
        params = tuple(v for row in chunk for v in row)
        yield Query(head + ", ".join([one] * len(chunk)), params, False)


def lock_mailbox(mailbox_id: int) -> Script[tuple[int, int, int]]:
    """Row-locks the mailbox (PostgreSQL) and returns (user_id, uidvalidity, highestmodseq)."""
    rows = yield Query(
        "UPDATE mailboxes SET highestmodseq = highestmodseq WHERE id = ?"
        " RETURNING user_id, uidvalidity, highestmodseq",
        (mailbox_id,),
    )
    if not rows:
        raise NotFound(f"no mailbox {mailbox_id}")
    return rows[0][0], rows[0][1], rows[0][2]


def allocate(mailbox_id: int, count: int) -> Script[tuple[int, int, int, int]]:
    """Takes ``count`` UIDs (may be 0) and one MODSEQ: (user_id, uidvalidity, first_uid, modseq).

    One UPDATE ... RETURNING: the row lock makes it gap-free and increasing across writers.
    """
    rows = yield Query(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1"
        " WHERE id = ? RETURNING user_id, uidvalidity, uidnext, highestmodseq",
        (count, mailbox_id),
    )
    if not rows:
        raise NotFound(f"no mailbox {mailbox_id}")
    user_id, uidvalidity, uidnext, modseq = rows[0]
    if uidnext - 1 > MAX_UID:  # RFC 9051 §2.3.1.1: UIDs are 32-bit; the mailbox is full
        raise StoreError(f"mailbox {mailbox_id} has used every UID")
    return user_id, uidvalidity, uidnext - count, modseq


def next_uidvalidity(now: int) -> Script[int]:
    """Larger than every UIDVALIDITY before it, and not below the clock (survives a restore)."""
    rows = yield Query(
        "UPDATE counters SET value = CASE WHEN value + 1 > ? THEN value + 1 ELSE ? END"
        " WHERE name = 'uidvalidity' RETURNING value",
        (now, now),
    )
    return int(rows[0][0])


def adjust_blobs(deltas: dict[str, int], sizes: dict[str, int]) -> Script[tuple[str, ...]]:
    """Applies reference count changes; returns the body files that lost their last reference.

    A body kept in its ``blobs`` row (``data``, see ``reference_blobs``) goes with the row and is
    not returned: there is no file to delete.
    """
    freed: list[str] = []
    for blob_id in sorted(deltas):
        delta = deltas[blob_id]
        if delta > 0:
            yield Query(
                "INSERT INTO blobs (id, refcount, size) VALUES (?, ?, ?) ON CONFLICT (id)"
                " DO UPDATE SET refcount = blobs.refcount + excluded.refcount",
                (blob_id, delta, sizes[blob_id]),
                False,
            )
        elif delta < 0:
            rows = yield Query(
                "UPDATE blobs SET refcount = refcount + ? WHERE id = ?"
                " RETURNING refcount, data IS NULL",
                (delta, blob_id),
            )
            if rows and rows[0][0] <= 0:
                yield Query("DELETE FROM blobs WHERE id = ?", (blob_id,), False)
                if rows[0][1]:
                    freed.append(blob_id)
    return tuple(freed)


def reference_blobs(
    counts: dict[str, int], sizes: dict[str, int], inline: dict[str, bytes]
) -> Script[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Adds references for new messages; returns ``(new files, stranded files)``.

    A body in ``inline`` is stored in its ``blobs`` row (column ``data``), in this transaction:
    it needs no file and no fsync of its own. The others are files, written before this
    transaction; one that had no reference before may have been deleted since it was written
    (its last reference went away in another transaction), so the caller checks, inside this
    transaction, that those *new files* exist (``courriel.store.sqlite``).

    A body written as a file whose row turns out to hold the bytes already (another append kept
    that body in the database, see ``courriel.store.sqlite.bodies``) is referenced through the
    row: its file is *stranded*, needed by nothing, and the caller deletes it after the commit.
    """
    created: list[str] = []
    stranded: list[str] = []
    for blob_id in sorted(counts):
        rows = yield Query(
            "INSERT INTO blobs (id, refcount, size, data) VALUES (?, ?, ?, ?) ON CONFLICT (id)"
            " DO UPDATE SET refcount = blobs.refcount + excluded.refcount"
            " RETURNING refcount, data IS NULL",
            (blob_id, counts[blob_id], sizes[blob_id], inline.get(blob_id)),
        )
        if not rows[0][1]:
            if blob_id not in inline:
                stranded.append(blob_id)
        elif rows[0][0] == counts[blob_id]:
            created.append(blob_id)
    return tuple(created), tuple(stranded)


def charge(usage: dict[int, tuple[int, int]]) -> Script[None]:
    """Adds (bytes, messages) to each user's usage; a user who grows past the quota aborts it."""
    for user_id in sorted(usage):
        size, count = usage[user_id]
        if size == 0 and count == 0:
            continue
        rows = yield Query(
            "UPDATE users SET used_bytes = used_bytes + ?, used_messages = used_messages + ?"
            " WHERE id = ? RETURNING used_bytes, quota_bytes, used_messages, quota_messages",
            (size, count, user_id),
        )
        if rows and size > 0 and rows[0][1] is not None and rows[0][0] > rows[0][1]:
            raise OverQuota(f"user {user_id} would use {rows[0][0]} of {rows[0][1]} bytes")
        if rows and count > 0 and rows[0][3] is not None and rows[0][2] > rows[0][3]:
            # RFC 9208 §5.2: the MESSAGE resource
            raise OverQuota(f"user {user_id} would have {rows[0][2]} of {rows[0][3]} messages")


def add_usage(usage: dict[int, tuple[int, int]], user_id: int, size: int, count: int) -> None:
    old = usage.get(user_id, (0, 0))
    usage[user_id] = (old[0] + size, old[1] + count)


def delete_messages(
    mailbox_id: int, ranges: Sequence[tuple[int, int]] | None, *, only_flag: int = 0
) -> Script[Rows]:
    """Deletes the messages in ``ranges`` (None: all of the mailbox), only those with the system
    flag bit ``only_flag`` set when it is given; returns their (uid, size, blob_id) rows by UID."""
    flag = " AND (sysflags & ?) <> 0" if only_flag else ""
    filters = [("1 = 1", ())] if ranges is None else range_filters(ranges)
    removed: Rows = []
    for clause, params in filters:
        removed += yield Query(
            f"DELETE FROM messages WHERE mailbox_id = ? AND {clause}{flag}"  # noqa: S608
            " RETURNING uid, size, blob_id",
            (mailbox_id, *params, *((only_flag,) if only_flag else ())),
        )
    removed.sort()
    return removed


def forget_messages(
    user_id: int, removed: Rows, usage: dict[int, tuple[int, int]], blobs: Counter[str]
) -> None:
    """Books deleted (uid, size, blob_id) rows against the owner's usage and the blob counts."""
    add_usage(usage, user_id, -sum(r[1] for r in removed), -len(removed))
    for row in removed:
        blobs[row[2]] -= 1


def log_expunges(mailbox_id: int, user_id: int, removed: Rows) -> Script[tuple[int, Change]]:
    """One new MODSEQ for the expunges (RFC 7162 §3.2.10), recorded for VANISHED (§3.2.5);
    the grantees' own \\Seen of the messages goes with them (``courriel.store.sql.seen``),
    else a shared mailbox would keep a row for every message a grantee ever read."""
    _, _, _, modseq = yield from allocate(mailbox_id, 0)
    uids = tuple(r[0] for r in removed)
    yield from insert_rows(
        "expunged", ("mailbox_id", "uid", "modseq"), [(mailbox_id, uid, modseq) for uid in uids]
    )
    for clause, params in range_filters(uid_ranges(uids)):
        yield Query(
            f"DELETE FROM private_seen WHERE mailbox_id = ? AND {clause}",  # noqa: S608
            (mailbox_id, *params),
            False,
        )
    return modseq, Change(user_id, mailbox_id, ChangeKind.EXPUNGED, modseq, uids)


def select_messages(mailbox_id: int, cols: str, ranges: Sequence[tuple[int, int]]) -> Script[Rows]:
    out: Rows = []
    for clause, params in range_filters(ranges):
        out += yield Query(
            f"SELECT {cols} FROM messages WHERE mailbox_id = ? AND {clause}",  # noqa: S608
            (mailbox_id, *params),
        )
    out.sort()
    return out


MAILBOX_COLS = "id, user_id, name, uidvalidity, uidnext, highestmodseq, special_use"


def mailbox_row(row: Row) -> Mailbox:
    return Mailbox(*row)


def check_name(name: str) -> None:
    """Refuses names with an empty level, which LIST could not show, and NUL (RFC 9051 §5.1).

    So no mailbox name starts with "/": renames use such names for their intermediate step.
    """
    if not name or name.startswith("/") or name.endswith("/") or "//" in name or "\0" in name:
        raise StoreError(f"bad mailbox name {name!r}")


def insert_mailbox(user_id: int, name: str, special_use: str | None, now: int) -> Script[Mailbox]:
    check_name(name)
    uidvalidity = yield from next_uidvalidity(now)
    rows = yield Query(
        "INSERT INTO mailboxes (user_id, name, uidvalidity, uidnext, highestmodseq, special_use)"
        " VALUES (?, ?, ?, 1, 1, ?) ON CONFLICT (user_id, name) DO NOTHING RETURNING id",
        (user_id, name, uidvalidity, special_use),
    )
    if not rows:
        raise AlreadyExists(f"mailbox {name} exists")
    return Mailbox(rows[0][0], user_id, name, uidvalidity, 1, 1, special_use)


def drop_mailbox(mailbox_id: int) -> Script[Rows]:
    """Deletes a mailbox with its messages and expunge log; returns (size, blob_id) rows."""
    removed = yield Query(
        "DELETE FROM messages WHERE mailbox_id = ? RETURNING size, blob_id", (mailbox_id,)
    )
    yield Query("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,), False)
    yield Query("DELETE FROM acl WHERE mailbox_id = ?", (mailbox_id,), False)  # RFC 4314 grants
    yield Query("DELETE FROM metadata WHERE mailbox_id = ?", (mailbox_id,), False)  # RFC 5464
    yield Query("DELETE FROM urlauth_keys WHERE mailbox_id = ?", (mailbox_id,), False)  # 4467
    yield Query("DELETE FROM private_seen WHERE mailbox_id = ?", (mailbox_id,), False)
    yield Query("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,), False)
    return removed


# --- migrations ------------------------------------------------------------------------------


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of ``migrations/<dialect>/NNNN_name.sql``, by version."""
    root = resources.files("courriel.store").joinpath("migrations", dialect)
    out = []
    for entry in root.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text(encoding="utf-8")))
    out.sort()
    return out
