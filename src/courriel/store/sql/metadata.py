"""Transaction scripts for METADATA (RFC 5464): annotations of mailboxes and of the server.

Theory of operation
-------------------
A row holds one entry of one scope: a mailbox (or the server, mailbox id 0) and an owner (the
user, for a "/private/..." entry, or 0 for a "/shared/..." one). A user sees their own private
entries and the shared ones. Limits are per scope and checked after the write, inside its
transaction, so a write that passes one is rolled back whole (``TooMany``).
"""

from __future__ import annotations

from collections.abc import Sequence

from courriel.store.base import Change, ChangeKind, TooMany
from courriel.store.sql.core import Done, Query, Script

SHARED_OWNER = 0
_NAMES_MAX = 2000


def owner_of(entry: str, user_id: int) -> int:
    return user_id if entry.startswith("/private/") else SHARED_OWNER


def get_metadata(mailbox_id: int, user_id: int) -> Script[dict[str, bytes]]:
    rows = yield Query(
        "SELECT entry, value FROM metadata WHERE mailbox_id = ? AND owner_id IN (?, ?)"
        " ORDER BY entry",
        (mailbox_id, user_id, SHARED_OWNER),
    )
    return {entry: bytes(value) for entry, value in rows}


def set_metadata(
    mailbox_id: int,
    user_id: int,
    items: Sequence[tuple[str, bytes | None]],
    max_entries: int,
    max_bytes: int,
) -> Script[Done[None]]:
    owners: set[int] = set()
    for entry, value in items:
        owner = owner_of(entry, user_id)
        owners.add(owner)
        if value is None:
            yield Query(
                "DELETE FROM metadata WHERE mailbox_id = ? AND owner_id = ? AND entry = ?",
                (mailbox_id, owner, entry),
                False,
            )
        else:
            yield Query(
                "INSERT INTO metadata (mailbox_id, owner_id, entry, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (mailbox_id, owner_id, entry) DO UPDATE SET value = excluded.value",
                (mailbox_id, owner, entry, value),
                False,
            )
    for owner in sorted(owners):
        rows = yield Query(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM metadata"
            " WHERE mailbox_id = ? AND owner_id = ?",
            (mailbox_id, owner),
        )
        count, size = int(rows[0][0]), int(rows[0][1])
        if count > max_entries or size > max_bytes:
            raise TooMany(f"{count} entries of {size} bytes in mailbox {mailbox_id}")
    names: list[str] = []
    for entry, _ in items:  # as many names as fit one event (a PostgreSQL NOTIFY payload)
        if sum(len(n) + 1 for n in names) + len(entry) > _NAMES_MAX:
            break
        names.append(entry)
    change = Change(user_id, mailbox_id, ChangeKind.METADATA_CHANGED, name=" ".join(names))
    return Done(None, (change,))
