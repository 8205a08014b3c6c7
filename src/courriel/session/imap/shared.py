"""Commands on mailboxes shared by other users: the rights each needs (RFC 4314 §4).

Theory of operation
-------------------
``intercept`` sees every command before the ordinary handlers. It takes over only commands
that name a mailbox in the other users' namespace (``imap_acl``) or run in a selected mailbox
of another user, checks the rights RFC 4314 §4 asks for, and then hands the command to the
ordinary handler with the mailbox found: the grantee acts on the owner's mailbox, which keeps
the owner's name, UIDs, quota and change events. Everything else returns None at once, after a
look at the mailbox name and the view: the owner's own commands pay no query for ACLs.

Rights per command (RFC 4314 §4): SELECT, EXAMINE, STATUS and FETCH need "r"; the session is
READ-ONLY when the user holds none of "s w t e". STORE needs "s" for \\Seen, "t" for \\Deleted
and "w" for other flags: flags the user may not set are left out, and a STORE left with none
is refused (§4 asks servers not to fail a STORE the user may partly do); a FETCH that would set
\\Seen without "s" peeks. APPEND, COPY and MOVE into a mailbox need "i" (and the flags rights
for the flags they carry, which are dropped otherwise); MOVE out of one needs "t" and "e",
EXPUNGE "e", CLOSE expunges only with "e". CREATE needs "k" on the parent, DELETE "x",
RENAME "x" on the old and "k" on the new parent, and only inside one owner's mailboxes.

\\Seen is the user's own on another user's mailbox (RFC 4314 §4 allows either; Dovecot
keeps it per user, and that is what a family or a team expects: one reading a bill does not
mark it read for the others). The store keeps the grantee's \\Seen apart (``private_seen``);
the view lays it over the owner's flags (``PrivateSeen``, ``SelectedView.overlay``), STORE and
FETCH set it there, and STATUS and LIST-STATUS count UNSEEN with it (``GranteeStatus``).
COPY out of the mailbox copies the owner's flags, and APPEND with \\Seen sets the owner's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import assert_never

from courriel.session.imap import append as imap_append
from courriel.session.imap import fetch as imap_fetch
from courriel.session.imap import mailboxes as imap_mailboxes
from courriel.session.imap import messages as imap_messages
from courriel.session.imap import select as imap_select
from courriel.session.imap.acl import (
    Access,
    access,
    is_shared,
    refusal,
    shared_name,
    shared_parts,
)
from courriel.session.imap.mailboxes import DELIMITER, StatusFn
from courriel.session.imap.state import Authenticated, Io, Selected, readonly_refusal
from courriel.store.base import FlagOp, Mailbox, MessageInfo, Store
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r

# Rights that make a selected mailbox writable (RFC 4314 §4: READ-ONLY without any).
_WRITE_RIGHTS = "stwe"

MailboxCommand = (
    c.Select
    | c.Examine
    | c.Status
    | c.Create
    | c.Delete
    | c.Subscribe
    | c.Unsubscribe
    | c.GetQuotaRoot
)


def flag_right(flag: str) -> str:
    """The right that governs setting or clearing ``flag`` (RFC 4314 §4, STORE)."""
    if flag.lower() == "\\seen":
        return "s"
    if flag.lower() == "\\deleted":
        return "t"
    return "w"


def permitted_flags(flags: frozenset[str], rights: str) -> frozenset[str]:
    return frozenset(f for f in flags if flag_right(f) in rights)


async def intercept(
    state: Authenticated, io: Io, cmd: c.Command, status_of: StatusFn
) -> bytes | None:
    """The complete reply when ``cmd`` concerns another user's mailbox, else None."""
    view = state.view
    rights = view.rights if view is not None else None
    match cmd:
        case c.Rename():
            if is_shared(cmd.old) or is_shared(cmd.new):
                return await _rename(state, cmd)
        case (
            c.Select()
            | c.Examine()
            | c.Status()
            | c.Create()
            | c.Delete()
            | c.Subscribe()
            | c.Unsubscribe()
            | c.GetQuotaRoot()
        ):
            if is_shared(cmd.mailbox):
                return await _mailbox_command(state, cmd, status_of)
        case c.Copy() | c.Move() if isinstance(state, Selected):
            if rights is not None or is_shared(cmd.mailbox):
                return await _copy_or_move(state, cmd, rights)
        case c.Store() if isinstance(state, Selected):
            if rights is not None:
                return await _store(state, cmd, rights)
        case c.Expunge():
            if rights is not None and "e" not in rights:
                return r.no(cmd.tag, "You need the 'e' right to expunge", r.NOPERM)
        case c.Close() if isinstance(state, Selected):
            if rights is not None and "e" not in rights:
                # RFC 4314 §4: CLOSE without "e" closes without expunging.
                await imap_select.close(state, c.Unselect(cmd.tag))
                return r.ok(cmd.tag, "CLOSE completed")
        case c.Fetch() if isinstance(state, Selected):
            if rights is not None and "s" not in rights:
                # RFC 4314 §4: without "s" a FETCH reads as with PEEK: \Seen stays as it is.
                return await imap_messages.fetch(state, io, cmd, may_set_seen=False)
            if view is not None and view.overlay is not None:
                return await _fetch_private(state, io, cmd)
    return None


async def append(state: Authenticated, io: Io, cmd: c.Append) -> bytes | None:
    """APPEND, to the user's own mailbox or, with "i", to a shared one (RFC 4314 §4)."""
    if not is_shared(cmd.mailbox):
        return await imap_append.append(state, io, cmd)
    found = await access(state, cmd.mailbox)
    refused = refusal(cmd.tag, found, "i")
    if refused is not None:
        return refused
    assert found is not None
    messages = tuple(
        dataclasses.replace(m, flags=permitted_flags(m.flags, found.rights)) for m in cmd.messages
    )
    return await imap_append.append(
        state, io, dataclasses.replace(cmd, messages=messages), found.box
    )


async def _mailbox_command(state: Authenticated, cmd: MailboxCommand, status_of: StatusFn) -> bytes:
    match cmd:
        case c.Select() | c.Examine():
            found = await access(state, cmd.mailbox)
            refused = refusal(cmd.tag, found, "r")
            if refused is not None:
                return refused
            assert found is not None
            readonly = isinstance(cmd, c.Examine) or not any(
                n in found.rights for n in _WRITE_RIGHTS
            )
            overlay = None
            if found.box.user_id != state.user_id:
                overlay = PrivateSeen(found.box.id, state.user_id)
            return await imap_select.open_selected(
                state, cmd, found.box.id, readonly, found.rights, found.name, overlay
            )
        case c.Status():
            found = await access(state, cmd.mailbox)
            refused = refusal(cmd.tag, found, "r")
            if refused is not None:
                return refused
            assert found is not None
            line = await status_of(dataclasses.replace(found.box, name=found.name), cmd.items)
            return line + r.ok(cmd.tag, "STATUS completed")
        case c.Create():
            return await _create(state, cmd)
        case c.Delete():
            return await _delete(state, cmd)
        case c.Subscribe():
            refused = refusal(cmd.tag, await access(state, cmd.mailbox), "l")
            if refused is not None:
                return refused
            await state.store.set_subscribed(state.user_id, cmd.mailbox, True)
            return r.ok(cmd.tag, "SUBSCRIBE completed")
        case c.Unsubscribe():
            await state.store.set_subscribed(state.user_id, cmd.mailbox, False)
            return r.ok(cmd.tag, "UNSUBSCRIBE completed")
        case c.GetQuotaRoot():
            refused = refusal(cmd.tag, await access(state, cmd.mailbox), "r")
            if refused is not None:
                return refused
            # The owner's quota holds the mailbox; its root is theirs, not the user's to read.
            return r.quotaroot(cmd.mailbox, [], utf8=state.utf8) + r.ok(cmd.tag, "No quota")
        case _:
            assert_never(cmd)


def _parent(name: str) -> str | None:
    head, sep, _ = name.rpartition(DELIMITER)
    return head if sep else None


async def _create(state: Authenticated, cmd: c.Create) -> bytes:
    parts = shared_parts(cmd.mailbox.rstrip(DELIMITER))
    parent = _parent(parts[1]) if parts else None
    if parts is None or parent is None:
        # Only inside a shared mailbox: the owner's top level is theirs alone.
        return r.no(cmd.tag, "Cannot create mailboxes at this level", r.NOPERM)
    found = await access(state, shared_name(parts[0], parent))
    refused = refusal(cmd.tag, found, "k")  # RFC 4314 §4: CREATE needs "k" on the parent
    if refused is not None:
        return refused
    assert found is not None
    renamed = dataclasses.replace(cmd, mailbox=parts[1])
    return await imap_mailboxes.create(state.store, found.box.user_id, renamed)


async def _delete(state: Authenticated, cmd: c.Delete) -> bytes:
    found = await access(state, cmd.mailbox)
    refused = refusal(cmd.tag, found, "x")  # RFC 4314 §4: DELETE needs "x"
    if refused is not None:
        return refused
    assert found is not None
    own_name = dataclasses.replace(cmd, mailbox=found.box.name)
    reply = await imap_mailboxes.delete(state.store, found.box.user_id, own_name)
    if isinstance(state, Selected) and state.view.mailbox.id == found.box.id and b" OK " in reply:
        state.unselect()  # this session deleted its own selected mailbox
        return r.untagged("OK", "Selected mailbox deleted", r.CLOSED) + reply
    return reply


async def _rename(state: Authenticated, cmd: c.Rename) -> bytes:
    old, new = shared_parts(cmd.old), shared_parts(cmd.new.rstrip(DELIMITER))
    if old is None or new is None or old[0].lower() != new[0].lower():
        return r.no(cmd.tag, "Mailboxes cannot move between users", r.CANNOT)
    found = await access(state, cmd.old)
    refused = refusal(cmd.tag, found, "x")  # RFC 4314 §4: RENAME needs "x" on the old name
    if refused is not None:
        return refused
    assert found is not None
    parent = _parent(new[1])
    if parent is None:
        return r.no(cmd.tag, "Cannot create mailboxes at this level", r.NOPERM)
    target_parent = await access(state, shared_name(found.owner, parent))
    refused = refusal(cmd.tag, target_parent, "k")  # and "k" on the new parent
    if refused is not None:
        return refused
    renamed = dataclasses.replace(cmd, old=found.box.name, new=new[1])
    return await imap_mailboxes.rename(state.store, found.box.user_id, renamed)


async def _copy_or_move(state: Selected, cmd: c.Copy | c.Move, rights: str | None) -> bytes:
    if isinstance(cmd, c.Move) and rights is not None and not all(n in rights for n in "te"):
        # RFC 6851 §3.3 with RFC 4314 §4: MOVE removes from the source, which needs "t" and "e".
        return r.no(cmd.tag, "You need the 't' and 'e' rights to move out", r.NOPERM)
    found: Access | None = await access(state, cmd.mailbox)
    if found is None:
        return r.no(cmd.tag, "No such mailbox", r.TRYCREATE)  # RFC 9051 §6.4.7
    refused = refusal(cmd.tag, found, "i")  # RFC 4314 §4: COPY and MOVE need "i" on the target
    if refused is not None:
        return refused
    return await imap_messages.copy_or_move(state, cmd, found.box.id)


async def _store(state: Selected, cmd: c.Store, rights: str) -> bytes:
    if cmd.mode is c.StoreMode.REPLACE:
        # Replacing may clear any flag: every flag right is needed.
        if not all(n in rights for n in "stw"):
            return r.no(cmd.tag, "You need the 's', 't' and 'w' rights to replace flags", r.NOPERM)
        allowed = cmd.flags
    else:
        allowed = permitted_flags(cmd.flags, rights)
        if cmd.flags and not allowed:
            return r.no(cmd.tag, "You may not change these flags here", r.NOPERM)  # RFC 4314 §4
    cmd = dataclasses.replace(cmd, flags=allowed)
    if state.selected().overlay is not None:
        return await _store_private(state, cmd)
    return await imap_messages.store(state, cmd)


# --- \Seen per user on other users' mailboxes ---------------------------------------------------

SEEN = "\\Seen"


def with_seen(info: MessageInfo, seen: bool) -> MessageInfo:
    """``info`` with the user's own \\Seen in place of the owner's."""
    flags = (info.flags - {SEEN}) | ({SEEN} if seen else frozenset())
    return info if flags == info.flags else dataclasses.replace(info, flags=flags)


@dataclass(frozen=True, slots=True)
class PrivateSeen:
    """The ``SelectedView.overlay`` of another user's mailbox: the user's own \\Seen."""

    mailbox_id: int
    user_id: int

    async def __call__(self, store: Store, infos: Sequence[MessageInfo]) -> list[MessageInfo]:
        seen = await store.private_seen(self.mailbox_id, self.user_id)
        return [with_seen(i, i.uid in seen) for i in infos]


async def _store_private(state: Selected, cmd: c.Store) -> bytes:
    """STORE where \\Seen is the user's own: the other flags go to the message, \\Seen to
    the user's row; the responses come from the refresh that follows, like any change."""
    view = state.selected()
    if view.readonly:
        return readonly_refusal(cmd.tag)
    uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    store, box = state.store, view.mailbox.id
    others = frozenset(f for f in cmd.flags if f.lower() not in ("\\seen", "\\recent"))
    since = cmd.unchangedsince
    if uids and cmd.mode is c.StoreMode.REPLACE:
        # The owner's \\Seen stays as it is: replace the rest of each message's flags.
        rows = {i.uid: i for i in await store.list_messages(box, uids[0], uids[-1])}
        kept = [u for u in uids if u in rows and SEEN in rows[u].flags]
        rest = [u for u in uids if u not in set(kept)]
        for group, flags in ((kept, others | {SEEN}), (rest, others)):
            if group:
                await store.store_flags(box, group, FlagOp.REPLACE, flags, unchanged_since=since)
        await store.set_private_seen(box, state.user_id, uids, SEEN in cmd.flags)
    elif uids:
        if others:
            op = FlagOp.ADD if cmd.mode is c.StoreMode.ADD else FlagOp.REMOVE
            await store.store_flags(box, uids, op, others, unchanged_since=since)
        if any(f.lower() == "\\seen" for f in cmd.flags):
            await store.set_private_seen(box, state.user_id, uids, cmd.mode is c.StoreMode.ADD)
    view.dirty = True
    out = [view.learn_keywords(others) if cmd.mode is not c.StoreMode.REMOVE else b""]
    out.append(await state.refresh(allow_expunge=cmd.uid))
    out.append(r.ok(cmd.tag, ("UID STORE" if cmd.uid else "STORE") + " completed"))
    return b"".join(out)


async def _fetch_private(state: Selected, io: Io, cmd: c.Fetch) -> bytes:
    """FETCH that sets \\Seen: the user's own, before the data is read (RFC 9051 §6.4.5)."""
    view = state.selected()
    plan = imap_fetch.plan_fetch(
        cmd.attributes, uid=cmd.uid, condstore=state.condstore, read_only=view.readonly
    )
    if plan.sets_seen:
        uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
        unseen = [u for u in uids if SEEN not in view.infos[u].flags]
        if unseen:
            await state.store.set_private_seen(view.mailbox.id, state.user_id, unseen, True)
            view.dirty = True  # the FETCH's own refresh announces the new \\Seen
    return await imap_messages.fetch(state, io, cmd, may_set_seen=False)


class GranteeStatus(StatusFn):
    """STATUS lines (STATUS, LIST-STATUS) with UNSEEN counted against the user's own \\Seen
    on other users' mailboxes; the user's own mailboxes cost nothing more."""

    def __init__(self, store: Store, user_id: int, *, utf8: bool, appendlimit: int) -> None:
        super().__init__(store, utf8=utf8, appendlimit=appendlimit)
        self.user_id = user_id

    async def __call__(self, box: Mailbox, items: Sequence[str]) -> bytes:
        line = await super().__call__(box, items)
        if box.user_id == self.user_id or "UNSEEN" not in items:
            return line
        seen = await self.store.private_seen(box.id, self.user_id)
        infos = await self.store.list_messages(box.id)
        unseen = sum(1 for i in infos if i.uid not in seen)
        head, sep, values = line.rpartition(b" (")
        values = re.sub(rb"UNSEEN \d+", b"UNSEEN %d" % unseen, values)
        return head + sep + values


async def recheck_rights(state: Authenticated) -> None:
    """After the ACL of the selected shared mailbox changed: take the new rights, and end the
    session (``AccessWithdrawn``: BYE, as for a mailbox deleted meanwhile) when reading is no
    longer granted."""
    view = state.view
    if view is None or view.rights is None:
        return
    owner = await state.store.get_user_by_id(view.mailbox.user_id)
    found = None
    if owner is not None:
        found = await state.store.shared_mailbox(state.user_id, owner.address, view.mailbox.name)
    if found is None or "r" not in found.rights:
        raise AccessWithdrawn
    view.rights = found.rights


class AccessWithdrawn(Exception):  # noqa: N818 - reads as an event
    """The user may no longer read the selected mailbox of another user."""
