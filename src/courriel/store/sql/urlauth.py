"""Transaction scripts for URLAUTH (RFC 4467): one access key per mailbox.

Theory of operation
-------------------
The key signs the URLAUTH URLs of the mailbox's messages (``courriel.session.urlauth``). It is
made on the first GENURLAUTH (the caller brings fresh random bytes; a concurrent GENURLAUTH
that made one first wins, and both then sign with it) and forgotten by RESETKEY, which voids
every URL signed with it.
"""

from __future__ import annotations

from courriel.store.base import NotFound
from courriel.store.sql.core import Done, Query, Script


def get_key(mailbox_id: int) -> Script[bytes | None]:
    rows = yield Query("SELECT key FROM urlauth_keys WHERE mailbox_id = ?", (mailbox_id,))
    return bytes(rows[0][0]) if rows else None


def make_key(mailbox_id: int, new_key: bytes) -> Script[Done[bytes | None]]:
    boxes = yield Query("SELECT 1 FROM mailboxes WHERE id = ?", (mailbox_id,))
    if not boxes:
        raise NotFound(f"no mailbox {mailbox_id}")
    yield Query(
        "INSERT INTO urlauth_keys (mailbox_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (mailbox_id, new_key),
        False,
    )
    key = yield from get_key(mailbox_id)
    return Done(key)


def reset_keys(user_id: int, mailbox_id: int | None) -> Script[Done[None]]:
    if mailbox_id is None:
        yield Query(
            "DELETE FROM urlauth_keys WHERE mailbox_id IN"
            " (SELECT id FROM mailboxes WHERE user_id = ?)",
            (user_id,),
            False,
        )
    else:
        yield Query(
            "DELETE FROM urlauth_keys WHERE mailbox_id = ? AND mailbox_id IN"
            " (SELECT id FROM mailboxes WHERE user_id = ?)",
            (mailbox_id, user_id),
            False,
        )
    return Done(None)
