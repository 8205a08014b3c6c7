"""Transaction scripts for \\Seen kept per user on other users' mailboxes (RFC 4314 §4).

Theory of operation
-------------------
The owner's \\Seen is a bit of ``messages.sysflags``; a grantee's is a row of
``private_seen``. Changing it is a flag change like another: the messages whose state changed
get one new MODSEQ (so CONDSTORE and the sessions' ``changes_since`` see them) and a
FLAGS_CHANGED event goes out on the owner's channel, which the grantee's sessions on that
mailbox follow. Other users' sessions see an unchanged flag set with a new MODSEQ.
"""

from __future__ import annotations

from collections.abc import Sequence

from courriel.store.base import Change, ChangeKind
from courriel.store.sql.core import (
    Done,
    Query,
    Script,
    allocate,
    insert_rows,
    lock_mailbox,
    range_filters,
    select_messages,
    uid_ranges,
)


def private_seen(mailbox_id: int, user_id: int) -> Script[set[int]]:
    rows = yield Query(
        "SELECT uid FROM private_seen WHERE mailbox_id = ? AND user_id = ?", (mailbox_id, user_id)
    )
    return {int(r[0]) for r in rows}


def set_private_seen(
    mailbox_id: int, user_id: int, uids: Sequence[int], seen: bool
) -> Script[Done[list[int]]]:
    owner, _, _ = yield from lock_mailbox(mailbox_id)
    ranges = uid_ranges(uids)
    present = [int(r[0]) for r in (yield from select_messages(mailbox_id, "uid", ranges))]
    have = yield from private_seen(mailbox_id, user_id)
    changed = [u for u in present if (u in have) != seen]
    if not changed:
        return Done([])
    if seen:
        rows = [(mailbox_id, user_id, uid) for uid in changed]
        yield from insert_rows("private_seen", ("mailbox_id", "user_id", "uid"), rows)
    else:
        for clause, params in range_filters(uid_ranges(changed)):
            yield Query(
                f"DELETE FROM private_seen WHERE mailbox_id = ? AND user_id = ? AND {clause}",  # noqa: S608
                (mailbox_id, user_id, *params),
                False,
            )
    _, _, _, modseq = yield from allocate(mailbox_id, 0)
    for clause, params in range_filters(uid_ranges(changed)):
        yield Query(
            f"UPDATE messages SET modseq = ? WHERE mailbox_id = ? AND {clause}",  # noqa: S608
            (modseq, mailbox_id, *params),
            False,
        )
    change = Change(owner, mailbox_id, ChangeKind.FLAGS_CHANGED, modseq, tuple(changed))
    return Done(changed, (change,))
