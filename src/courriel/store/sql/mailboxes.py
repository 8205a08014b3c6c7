"""Transaction scripts for mailboxes: create, rename, delete, subscriptions, status.

Theory of operation
-------------------
Names use "/" as the hierarchy delimiter; hierarchy is only a naming convention, so deleting "a"
leaves "a/b" (RFC 9051 §6.3.5) and renaming "a" renames "a/..." with it, keeping each mailbox's
id and UIDVALIDITY. Renaming INBOX is special (RFC 9051 §6.3.6): a new mailbox takes INBOX's
messages with new UIDs, INBOX stays, empty, with its UIDVALIDITY and UIDNEXT. Every new mailbox
takes a UIDVALIDITY from one counter row, above every earlier one and not below the clock.
"""

from __future__ import annotations

from collections import Counter

from courriel.store.base import (
    AlreadyExists,
    Change,
    ChangeKind,
    Mailbox,
    MailboxSince,
    MailboxStatus,
    NotFound,
    OverQuota,
    QuotaUsage,
    StoreError,
)
from courriel.store.sql.acl import inherit_acl
from courriel.store.sql.core import (
    INBOX,
    MAILBOX_COLS,
    MAX_UID,
    SEEN,
    Done,
    Query,
    Rows,
    Script,
    adjust_blobs,
    charge,
    check_name,
    drop_mailbox,
    insert_mailbox,
    lock_mailbox,
    mailbox_name,
    mailbox_row,
)
from courriel.store.sql.messages import changes_since, copy_messages, expunged_since
from courriel.store.sql.recent import recent_uid


def _require_user(user_id: int) -> Script[None]:
    rows = yield Query("SELECT 1 FROM users WHERE id = ?", (user_id,))
    if not rows:
        raise NotFound(f"no user {user_id}")


def create_mailbox(
    user_id: int, name: str, special_use: str | None, now: int
) -> Script[Done[Mailbox]]:
    yield from _require_user(user_id)
    yield from _mailbox_quota(user_id)
    box = yield from insert_mailbox(user_id, mailbox_name(name), special_use, now)
    yield from inherit_acl(user_id, box)
    return Done(box, (Change(user_id, box.id, ChangeKind.MAILBOX_CREATED, name=box.name),))


def _mailbox_quota(user_id: int) -> Script[None]:
    """RFC 9208 §5.3: the MAILBOX resource counts the user's mailboxes."""
    rows = yield Query(
        "SELECT quota_mailboxes, (SELECT count(*) FROM mailboxes WHERE user_id = ?)"
        " FROM users WHERE id = ?",
        (user_id, user_id),
    )
    if rows and rows[0][0] is not None and rows[0][1] >= rows[0][0]:
        raise OverQuota(f"user {user_id} has {rows[0][1]} of {rows[0][0]} mailboxes")


def get_mailbox(user_id: int, name: str) -> Script[Mailbox | None]:
    rows = yield Query(
        f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = ? AND name = ?",  # noqa: S608
        (user_id, mailbox_name(name)),
    )
    return mailbox_row(rows[0]) if rows else None


def get_mailbox_by_id(mailbox_id: int) -> Script[Mailbox | None]:
    rows = yield Query(
        f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE id = ?",  # noqa: S608
        (mailbox_id,),
    )
    return mailbox_row(rows[0]) if rows else None


def mailbox_since(mailbox_id: int, modseq: int, changes: bool) -> Script[MailboxSince | None]:
    box = yield from get_mailbox_by_id(mailbox_id)
    if box is None:
        return None
    claimed = yield from recent_uid(mailbox_id)
    if box.highestmodseq <= modseq and not changes:
        return MailboxSince(box, claimed)
    expunged = yield from expunged_since(mailbox_id, modseq)
    changed = yield from changes_since(mailbox_id, modseq)
    return MailboxSince(box, claimed, tuple(expunged), tuple(changed))


def list_mailboxes(user_id: int) -> Script[list[Mailbox]]:
    rows = yield Query(
        f"SELECT {MAILBOX_COLS} FROM mailboxes WHERE user_id = ? ORDER BY name",  # noqa: S608
        (user_id,),
    )
    return [mailbox_row(r) for r in rows]


def _subtree(user_id: int, name: str) -> Script[Rows]:
    """(id, name) of ``name`` and every ``name/...`` below it, by id (lock order)."""
    rows = yield Query(
        "SELECT id, name FROM mailboxes WHERE user_id = ? AND (name = ? OR substr(name, 1, ?) = ?)"
        " ORDER BY id",
        (user_id, name, len(name) + 1, name + "/"),
    )
    return rows


def rename_mailbox(user_id: int, old: str, new: str, now: int) -> Script[Done[Mailbox]]:
    old, new = mailbox_name(old), mailbox_name(new)
    check_name(new)
    if old == INBOX:
        return (yield from _rename_inbox(user_id, new, now))
    if new == old or new.startswith(old + "/"):
        raise StoreError(f"cannot rename {old} to {new}")
    moving = yield from _subtree(user_id, old)
    if not any(name == old for _, name in moving):
        raise NotFound(f"no mailbox {old}")
    renamed = {box_id: new + name[len(old) :] for box_id, name in moving}
    present = yield from _subtree(user_id, new)
    taken = {name for box_id, name in present if box_id not in renamed}
    if taken & set(renamed.values()):
        raise AlreadyExists(f"mailbox {new} or one below it exists")
    # Two passes, so no intermediate state breaks UNIQUE (user_id, name) when the old and the
    # new subtree overlap ("a/b" -> "a" while "a/b/b" exists). No real name starts with "/".
    for box_id in renamed:
        yield Query("UPDATE mailboxes SET name = ? WHERE id = ?", (f"/{box_id}", box_id), False)
    for box_id, name in renamed.items():
        yield Query("UPDATE mailboxes SET name = ? WHERE id = ?", (name, box_id), False)
    top = next(box_id for box_id, name in moving if name == old)
    box = yield from get_mailbox_by_id(top)
    assert box is not None
    changes = tuple(
        Change(user_id, box_id, ChangeKind.MAILBOX_RENAMED, name=name)
        for box_id, name in renamed.items()
    )
    return Done(box, changes)


def _rename_inbox(user_id: int, new: str, now: int) -> Script[Done[Mailbox]]:
    """RFC 9051 §6.3.6: a new mailbox gets INBOX's messages; INBOX stays, empty."""
    inbox = yield from get_mailbox(user_id, INBOX)
    if inbox is None:
        raise NotFound("no INBOX")
    box = yield from insert_mailbox(user_id, new, None, now)
    moved = yield from copy_messages(inbox.id, [(1, MAX_UID)], box.id, move=True)
    created = Change(user_id, box.id, ChangeKind.MAILBOX_CREATED, name=new)
    after = yield from get_mailbox_by_id(box.id)
    assert after is not None
    return Done(after, (created, *moved.changes), moved.freed_blobs)


def delete_mailbox(user_id: int, name: str) -> Script[Done[None]]:
    name = mailbox_name(name)
    if name == INBOX:  # RFC 9051 §6.3.5: deleting INBOX is an error
        raise StoreError("INBOX cannot be deleted")
    rows = yield Query("SELECT id FROM mailboxes WHERE user_id = ? AND name = ?", (user_id, name))
    if not rows:
        raise NotFound(f"no mailbox {name}")
    mailbox_id = rows[0][0]
    yield from lock_mailbox(mailbox_id)
    # Children ("name/...") stay: IMAP hierarchy is a naming convention (RFC 9051 §6.3.5).
    removed = yield from drop_mailbox(mailbox_id)
    blobs = Counter(r[1] for r in removed)
    freed = yield from adjust_blobs({k: -v for k, v in blobs.items()}, {})
    yield from charge({user_id: (-sum(r[0] for r in removed), -len(removed))})
    change = Change(user_id, mailbox_id, ChangeKind.MAILBOX_DELETED, name=name)
    return Done(None, (change,), freed)


def subscriptions(user_id: int) -> Script[list[str]]:
    rows = yield Query("SELECT name FROM subscriptions WHERE user_id = ? ORDER BY name", (user_id,))
    return [r[0] for r in rows]


def set_subscribed(user_id: int, name: str, subscribed: bool) -> Script[Done[None]]:
    yield from _require_user(user_id)
    if subscribed:
        yield Query(
            "INSERT INTO subscriptions (user_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (user_id, mailbox_name(name)),
            False,
        )
    else:
        yield Query(
            "DELETE FROM subscriptions WHERE user_id = ? AND name = ?",
            (user_id, mailbox_name(name)),
            False,
        )
    kind = ChangeKind.SUBSCRIBED if subscribed else ChangeKind.UNSUBSCRIBED
    return Done(None, (Change(user_id, 0, kind, name=mailbox_name(name)),))


def mailbox_status(mailbox_id: int) -> Script[MailboxStatus]:
    box = yield from get_mailbox_by_id(mailbox_id)
    if box is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    rows = yield Query(
        "SELECT count(*), coalesce(sum(size), 0),"
        " coalesce(sum(CASE WHEN (sysflags & ?) = 0 THEN 1 ELSE 0 END), 0)"
        " FROM messages WHERE mailbox_id = ?",
        (SEEN, mailbox_id),
    )
    count, size, unseen = rows[0]
    return MailboxStatus(box, int(count), int(unseen), int(size))


def quota_usage(user_id: int) -> Script[QuotaUsage]:
    rows = yield Query(
        "SELECT used_bytes, used_messages, quota_bytes, quota_messages, quota_mailboxes,"
        " (SELECT count(*) FROM mailboxes WHERE user_id = ?) FROM users WHERE id = ?",
        (user_id, user_id),
    )
    if not rows:
        raise NotFound(f"no user {user_id}")
    used, messages, limit, limit_messages, limit_mailboxes, boxes = rows[0]
    return QuotaUsage(used, messages, limit, limit_messages, int(boxes), limit_mailboxes)
