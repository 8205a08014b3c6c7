"""Transaction scripts for access control lists (RFC 4314): grants, and what a grantee reaches.

Theory of operation
-------------------
A row of ``acl`` grants one identifier (a user, or ``ANYONE``) some rights on one mailbox. The
owner's rights are implicit (all of them) and never stored, so the owner's own commands never
read this table. A user's rights on another's mailbox are the union of their own row and the
"anyone" row (RFC 4314 §2: no negative rights are kept). Rights are stored as the letters of
``ALL_RIGHTS`` in that order, so comparing and printing them needs no sorting.

Rows are removed with their mailbox (``core.drop_mailbox``) and with their grantee
(``accounts.remove_user``); a rename keeps the mailbox id and so keeps its ACL.
"""

from __future__ import annotations

from courriel.store.base import (
    ALL_RIGHTS,
    ANYONE,
    AclEntry,
    Change,
    ChangeKind,
    Mailbox,
    NotFound,
    SharedMailbox,
    StoreError,
)
from courriel.store.sql.core import (
    MAILBOX_COLS,
    Done,
    Query,
    Row,
    Script,
    address_key,
    mailbox_name,
    mailbox_row,
)

_NCOLS = len(MAILBOX_COLS.split(", "))
_BOX_COLS = ", ".join("m." + c for c in MAILBOX_COLS.split(", "))


def canonical_rights(rights: str) -> str:
    """The rights in store order; ``StoreError`` for a letter RFC 4314 §2.1 does not define."""
    bad = set(rights) - set(ALL_RIGHTS)
    if bad:
        raise StoreError(f"unknown rights {''.join(sorted(bad))!r}")
    return "".join(r for r in ALL_RIGHTS if r in rights)


def union(*rights: str) -> str:
    joined = "".join(rights)
    return "".join(r for r in ALL_RIGHTS if r in joined)


def inherit_acl(user_id: int, box: Mailbox) -> Script[None]:
    """A new mailbox takes its parent's grants, as Dovecot does: what is shared stays shared
    below, and a grantee who creates inside a shared mailbox can use what they created."""
    parent, sep, _ = box.name.rpartition("/")
    if not sep:
        return
    yield Query(
        "INSERT INTO acl (mailbox_id, grantee_id, rights) SELECT ?, a.grantee_id, a.rights"
        " FROM acl a JOIN mailboxes m ON m.id = a.mailbox_id WHERE m.user_id = ? AND m.name = ?",
        (box.id, user_id, parent),
        False,
    )


def get_acl(mailbox_id: int) -> Script[list[AclEntry]]:
    rows = yield Query(
        "SELECT a.grantee_id, u.address, a.rights FROM acl a"
        " LEFT JOIN users u ON u.id = a.grantee_id WHERE a.mailbox_id = ?"
        " ORDER BY a.grantee_id",
        (mailbox_id,),
    )
    out = [AclEntry(g, "anyone" if g == ANYONE else addr, rights) for g, addr, rights in rows]
    out.sort(key=lambda e: (e.grantee_id != ANYONE, e.identifier.lower()))
    return out


def set_acl(mailbox_id: int, grantee_id: int, rights: str) -> Script[Done[None]]:
    rights = canonical_rights(rights)
    boxes = yield Query("SELECT user_id FROM mailboxes WHERE id = ?", (mailbox_id,))
    if not boxes:
        raise NotFound(f"no mailbox {mailbox_id}")
    # On the owner's channel, which a grantee with the mailbox selected follows; and on the
    # grantee's, whose NOTIFY learns of a mailbox shared with it anew (RFC 5465 §5.9).
    owner = boxes[0][0]
    changes = [Change(owner, mailbox_id, ChangeKind.ACL_CHANGED)]
    if grantee_id not in (ANYONE, owner):
        changes.append(Change(grantee_id, mailbox_id, ChangeKind.ACL_CHANGED))
    if grantee_id != ANYONE:
        users = yield Query("SELECT 1 FROM users WHERE id = ?", (grantee_id,))
        if not users:
            raise NotFound(f"no user {grantee_id}")
    if not rights:
        yield Query(
            "DELETE FROM acl WHERE mailbox_id = ? AND grantee_id = ?",
            (mailbox_id, grantee_id),
            False,
        )
    else:
        yield Query(
            "INSERT INTO acl (mailbox_id, grantee_id, rights) VALUES (?, ?, ?)"
            " ON CONFLICT (mailbox_id, grantee_id) DO UPDATE SET rights = excluded.rights",
            (mailbox_id, grantee_id, rights),
            False,
        )
    return Done(None, tuple(changes))


def shared_mailboxes(user_id: int) -> Script[list[SharedMailbox]]:
    rows = yield Query(
        f"SELECT {_BOX_COLS}, u.address, a.rights FROM acl a"  # noqa: S608 - constant columns
        " JOIN mailboxes m ON m.id = a.mailbox_id JOIN users u ON u.id = m.user_id"
        " WHERE a.grantee_id IN (?, ?) AND m.user_id <> ?",
        (user_id, ANYONE, user_id),
    )
    merged: dict[int, SharedMailbox] = {}
    for row in rows:
        box = _mailbox(row)
        old = merged.get(box.id)
        rights = union(old.rights, row[-1]) if old else row[-1]
        merged[box.id] = SharedMailbox(box, row[-2], rights)
    return sorted(merged.values(), key=lambda s: (s.owner.lower(), s.mailbox.name))


def shared_mailbox(user_id: int, owner: str, name: str) -> Script[SharedMailbox | None]:
    rows = yield Query(
        f"SELECT {_BOX_COLS}, u.address FROM mailboxes m"  # noqa: S608 - constant columns
        " JOIN users u ON u.id = m.user_id WHERE u.address_key = ? AND m.name = ?",
        (address_key(owner), mailbox_name(name)),
    )
    if not rows:
        return None
    box = _mailbox(rows[0])
    if box.user_id == user_id:
        return SharedMailbox(box, rows[0][-1], ALL_RIGHTS)
    grants = yield Query(
        "SELECT rights FROM acl WHERE mailbox_id = ? AND grantee_id IN (?, ?)",
        (box.id, user_id, ANYONE),
    )
    return SharedMailbox(box, rows[0][-1], union(*(g[0] for g in grants)))


def _mailbox(row: Row) -> Mailbox:
    return mailbox_row(row[:_NCOLS])
