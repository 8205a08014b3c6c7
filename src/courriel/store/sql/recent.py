"""Transaction scripts for \\Recent: which session is the first to be told of each message.

Theory of operation
-------------------
RFC 3501 §2.3.2: a message is \\Recent in exactly one session, the first to select its mailbox
(or to be notified of it while selected) after it arrived. Sessions live in many worker
processes, so the claim is a row in the store: ``mailboxes.recent_uid``, the highest UID some
session has been given as recent. ``claim_recent`` raises it to a UID and returns the value it
had, under the mailbox row lock (``lock_mailbox``; SQLite serialises writers anyway), so two
sessions claiming at once get disjoint ranges: the UIDs above the old value, up to the new one,
are recent to the caller alone. ``recent_uid`` reads it without claiming, for EXAMINE and
STATUS, which must not take \\Recent away from anyone (RFC 3501 §6.3.2).
"""

from __future__ import annotations

from courriel.store.base import NotFound
from courriel.store.sql.core import Done, Query, Script, lock_mailbox


def claim_recent(mailbox_id: int, up_to_uid: int) -> Script[Done[int]]:
    """Raises the claimed UID to ``up_to_uid``; returns the UID claimed before."""
    yield from lock_mailbox(mailbox_id)
    before = yield from recent_uid(mailbox_id)
    if up_to_uid > before:
        yield Query(
            "UPDATE mailboxes SET recent_uid = ? WHERE id = ?", (up_to_uid, mailbox_id), rows=False
        )
    return Done(before)


def recent_uid(mailbox_id: int) -> Script[int]:
    rows = yield Query("SELECT recent_uid FROM mailboxes WHERE id = ?", (mailbox_id,))
    if not rows:
        raise NotFound(f"no mailbox {mailbox_id}")
    return int(rows[0][0])
