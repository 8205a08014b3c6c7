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
from dataclasses import dataclass

from courriel.mail.flags import acl_right
from courriel.store.base import Change, ChangeKind
from courriel.store.sql.core import (
    SEEN,
    Done,
    Query,
    Script,
    allocate,
    decode_flags,
    encode_flags,
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


def new_seen_rows(mailbox_id: int, user_id: int, uids: Sequence[int]) -> Script[None]:
    """The user's \\Seen on messages just stored: their UIDs are new, so no row exists yet and
    the messages' own new MODSEQ covers the change."""
    if uids:
        rows = [(mailbox_id, user_id, uid) for uid in uids]
        yield from insert_rows("private_seen", ("mailbox_id", "user_id", "uid"), rows)


@dataclass(frozen=True, slots=True)
class CopyFlags:
    """The flags of the copies a user makes from or into another user's mailbox (RFC 4314 §4):
    \\Seen is the user's own on a mailbox another user owns, and a copy keeps only the flags the
    user's ``rights`` on the target allow."""

    rights: str
    source_seen: frozenset[int] | None  # the user's own \Seen of another user's source
    private: bool  # the target is another user's: \Seen goes to the user's row

    def of(self, uid: int, bits: int, keywords: str) -> tuple[int, str, bool]:
        """The copy of source ``uid``: its flag bits, keywords, and whether it gets a row."""
        flags = decode_flags(bits, keywords)
        seen = (SEEN & bits) != 0 if self.source_seen is None else uid in self.source_seen
        kept = frozenset(f for f in flags if f != "\\Seen" and acl_right(f) in self.rights)
        seen = seen and "s" in self.rights
        if seen and not self.private:
            kept |= {"\\Seen"}
        new_bits, new_keywords = encode_flags(kept)
        return new_bits, new_keywords, seen and self.private


def copy_flags(
    src_owner: int, src: int, dst_owner: int, user_id: int, rights: str
) -> Script[CopyFlags]:
    """How ``user_id``'s copies from ``src`` into a mailbox of ``dst_owner`` take flags, read
    under the lock of the copy's transaction."""
    source_seen = None
    if src_owner != user_id:
        source_seen = frozenset((yield from private_seen(src, user_id)))
    return CopyFlags(rights, source_seen, dst_owner != user_id)
