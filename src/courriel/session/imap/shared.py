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
READ-ONLY when the user holds none of "i s w t e" (§5.2; "s" counts although \\Seen is the
user's own, so that reading marks it). The flag rights: "s" for \\Seen, "t" for \\Deleted,
"w" for every other flag and for new keywords. PERMANENTFLAGS lists only the flags the rights
allow (§5.1.1, ``SelectedView.permanent_flags``), sent again when a new ACL changes them. STORE
changes the flags it may and leaves the others, and fails with NO [NOPERM] only when it may
change none of them (§4: deployed clients handle a failed STORE badly); STORE FLAGS replaces
the flags the user may change and keeps the others as they are. A FETCH that would set \\Seen
without "s" peeks. APPEND, COPY, MOVE and REPLACE into a mailbox need "i", and the new
message keeps only the flags the user may set there; the others are dropped without a failure
(§4). MOVE and REPLACE out of one need "t" and "e", EXPUNGE "e", CLOSE expunges only with "e".
CREATE needs "k" on the parent, DELETE "x", RENAME "x" on the old and "k" on the new parent,
and only inside one owner's mailboxes.

\\Seen is the user's own on another user's mailbox (RFC 4314 §4 allows either; Dovecot
keeps it per user, and that is what a family or a team expects: one reading a bill does not
mark it read for the others). The store keeps the grantee's \\Seen apart (``private_seen``);
the view lays it over the owner's flags (``PrivateSeen``, ``SelectedView.overlay``) whatever
the rights, so a reader with "r" alone sees their own (unchanging) \\Seen. STORE and FETCH
set it there, and STATUS and LIST-STATUS count UNSEEN with it (``GranteeStatus``). A message
that enters or leaves another user's mailbox carries the \\Seen of the user who moved it:
APPEND, REPLACE, COPY and MOVE into such a mailbox record it as the user's own and give the
owner none, and COPY and MOVE out of one give the copy the user's \\Seen, not the owner's.
The store does this in the transaction of the copy, move, append or replace itself (their
``seen_user`` and ``rights`` arguments, ``courriel.store.sql.seen``): no moment and no failure
leaves a copy with the owner's flags, or a new message unseen by its author.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import assert_never

from courriel.mail.flags import acl_right
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
from courriel.session.imap.selected import permitted_flags
from courriel.session.imap.state import Authenticated, Io, Selected, readonly_refusal
from courriel.store.base import FlagOp, Mailbox, MessageInfo, Store
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r

# Rights that make a selected mailbox READ-WRITE (RFC 4314 §5.2: "i", "e" and the flag rights;
# "s" counts although \\Seen is the user's own here, so that reading can mark it).
_WRITE_RIGHTS = "istwe"

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
        case c.Replace() if isinstance(state, Selected):
            if rights is not None or is_shared(cmd.mailbox):
                return await _replace(state, cmd, rights)
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
                return await imap_fetch.fetch(state, io, cmd, may_set_seen=False)
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
    # The store gives the copies the user's own \\Seen and only the flags these rights allow,
    # in the copy's own transaction.
    return await imap_messages.copy_or_move(state, cmd, found.box.id, found.rights)


async def _replace(state: Selected, cmd: c.Replace, rights: str | None) -> bytes:
    """REPLACE (RFC 8508) from or to another user's mailbox: "i" on the target, as APPEND,
    and "t" and "e" on the source, whose message is expunged (§3.3, RFC 4314 §4)."""
    if rights is not None and not all(n in rights for n in "te"):
        return r.no(cmd.tag, "You need the 't' and 'e' rights to replace here", r.NOPERM)
    found = await access(state, cmd.mailbox)
    if found is None:
        return r.no(cmd.tag, "No such mailbox", r.TRYCREATE)  # RFC 8508 §3.3
    refused = refusal(cmd.tag, found, "i")
    if refused is not None:
        return refused
    m = cmd.message
    message = dataclasses.replace(m, flags=permitted_flags(m.flags, found.rights))
    return await imap_append.replace(state, dataclasses.replace(cmd, message=message), found.box)


async def _store(state: Selected, cmd: c.Store, rights: str) -> bytes:
    if state.selected().overlay is None:
        return await imap_messages.store(state, cmd)  # the user's own mailbox: every right
    asked = frozenset(f for f in cmd.flags if f.lower() != "\\recent")
    if cmd.mode is c.StoreMode.REPLACE:
        # Replacing changes every flag: of those the user may change, to what was asked.
        if not any(n in rights for n in "stw"):
            return r.no(cmd.tag, "You may not change flags here", r.NOPERM)
    elif asked and not permitted_flags(asked, rights):
        # RFC 4314 §4: a STORE fails only when the user may change none of its flags.
        return r.no(cmd.tag, "You may not change these flags here", r.NOPERM)
    return await _store_private(state, cmd, permitted_flags(asked, rights), rights)


# --- \Seen per user on other users' mailboxes ---------------------------------------------------

SEEN = "\\Seen"


def with_seen(info: MessageInfo, seen: bool) -> MessageInfo:
    """``info`` with the user's own \\Seen in place of the owner's."""
    flags = (info.flags - {SEEN}) | ({SEEN} if seen else frozenset())
    return info if flags == info.flags else info._replace(flags=flags)


@dataclass(frozen=True, slots=True)
class PrivateSeen:
    """The ``SelectedView.overlay`` of another user's mailbox: the user's own \\Seen."""

    mailbox_id: int
    user_id: int

    async def __call__(self, store: Store, infos: Sequence[MessageInfo]) -> list[MessageInfo]:
        seen = await store.private_seen(self.mailbox_id, self.user_id)
        return [with_seen(i, i.uid in seen) for i in infos]


async def _store_private(
    state: Selected, cmd: c.Store, flags: frozenset[str], rights: str
) -> bytes:
    """STORE where \\Seen is the user's own: the other flags go to the message, \\Seen to
    the user's row, each only as far as ``rights`` allow; the responses come from the refresh
    that follows, like any change."""
    view = state.selected()
    if view.readonly:
        return readonly_refusal(cmd.tag)
    first = False
    if cmd.unchangedsince is not None:
        first = state.enable_condstore()  # RFC 7162 §3.1: UNCHANGEDSINCE enables CONDSTORE
    uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    store, box = state.store, view.mailbox.id
    others = frozenset(f for f in flags if f.lower() != "\\seen")
    owned = "".join(n for n in "tw" if n in rights)  # the owner's flags the user may change
    since = cmd.unchangedsince
    modified: list[int] = []
    if uids and cmd.mode is c.StoreMode.REPLACE:
        # Each message keeps the flags the user may not change (the owner's \\Seen always)
        # and gets, of the others, exactly those asked for.
        rows = await store.list_messages(box, uids[0], uids[-1])
        wanted: dict[frozenset[str], list[int]] = {}
        chosen = set(uids)
        for row in rows:
            kept = frozenset(f for f in row.flags if acl_right(f) not in owned)
            # A message that would not change is left out, unless UNCHANGEDSINCE is to
            # judge it (RFC 7162 §3.1.3 reports it even then).
            if row.uid in chosen and (since is not None or kept | others != row.flags):
                wanted.setdefault(kept | others, []).append(row.uid)
        for new, group in wanted.items():
            result = await store.store_flags(box, group, FlagOp.REPLACE, new, unchanged_since=since)
            modified += result.modified
    elif uids and others:
        op = FlagOp.ADD if cmd.mode is c.StoreMode.ADD else FlagOp.REMOVE
        result = await store.store_flags(box, uids, op, others, unchanged_since=since)
        modified += result.modified
    if uids and "s" in rights and (cmd.mode is c.StoreMode.REPLACE or SEEN in _folded(flags)):
        seen = SEEN in _folded(flags) and cmd.mode is not c.StoreMode.REMOVE
        left = [u for u in uids if u not in set(modified)]  # RFC 7162 §3.1.3: left alone
        await store.set_private_seen(box, state.user_id, left, seen)
    view.dirty = True
    out = [view.learn_keywords(others) if cmd.mode is not c.StoreMode.REMOVE else b""]
    out.append(await state.refresh(allow_expunge=cmd.uid))
    code = state.condstore_code(first)
    if modified:
        if code is not None:
            out.append(r.untagged("OK", "Highest", code))
        numbers = modified if cmd.uid else [view.seq_of(u) or 0 for u in modified]
        code = r.modified(n for n in sorted(numbers) if n)  # RFC 7162 §3.1.3
    out.append(r.ok(cmd.tag, ("UID STORE" if cmd.uid else "STORE") + " completed", code))
    return b"".join(out)


def _folded(flags: frozenset[str]) -> frozenset[str]:
    """System flags in their usual spelling, whatever case the client used."""
    return frozenset(SEEN if f.lower() == "\\seen" else f for f in flags)


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
    return await imap_fetch.fetch(state, io, cmd, may_set_seen=False)


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


async def recheck_rights(state: Authenticated) -> bytes:
    """After the ACL of the selected shared mailbox changed: take the new rights, and end the
    session (``AccessWithdrawn``: BYE, as for a mailbox deleted meanwhile) when reading is no
    longer granted. Returns PERMANENTFLAGS again when the flags the user may change changed
    with the rights (RFC 4314 §5.1.1)."""
    view = state.view
    if view is None or view.rights is None:
        return b""
    owner = await state.store.get_user_by_id(view.mailbox.user_id)
    found = None
    if owner is not None:
        found = await state.store.shared_mailbox(state.user_id, owner.address, view.mailbox.name)
    if found is None or "r" not in found.rights:
        raise AccessWithdrawn
    before = view.permanent_flags()
    view.rights = found.rights
    after = view.permanent_flags()
    return b"" if after == before else after


class AccessWithdrawn(Exception):  # noqa: N818 - reads as an event
    """The user may no longer read the selected mailbox of another user."""
