"""APPEND (with MULTIAPPEND and APPENDLIMIT).

Theory of operation
-------------------
A literal is approved before it is read: when the client announces ``{n}``, ``literal_allowed``
compares the bytes the command would carry in all (MULTIAPPEND sends several literals) with
APPENDLIMIT, and the session answers ``NO [TOOBIG]`` at once when it is over (RFC 7889 §4),
so the client never sends the message.

A CATENATE message is first joined from its parts (``imap_catenate``). A message is stored
unparsed: the store parses it the first time something needs its parse (FETCH ENVELOPE, SEARCH;
``courriel.store.base``, "Parsed on first need"). All messages of one command go to the store
in one ``append`` call, all or nothing (RFC 3502 §6.3.11). The tagged OK with APPENDUID
(RFC 4315 §3) is written inside the connection's transaction after ``append`` returned, so
shutdown cannot separate a stored message from its acknowledgement and no OK is ever sent for a
message that is not durable.

The QUOTA commands live in ``imap_quota``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from courriel.session.imap import catenate as imap_catenate
from courriel.session.imap import sort as imap_sort
from courriel.session.imap.state import Authenticated, Io, Selected, readonly_refusal
from courriel.store.base import Mailbox, NewMessage
from courriel.timeslice import TimeSlice
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.events import LiteralRequest

_MESSAGE_COMMANDS = frozenset({"APPEND", "REPLACE", "UID REPLACE"})


def literal_allowed(req: LiteralRequest, appendlimit: int) -> bool:
    """Whether the announced literal may be sent (RFC 7889: APPENDLIMIT for APPEND; RFC 8508
    §3.3: REPLACE appends too)."""
    if req.command not in _MESSAGE_COMMANDS:
        return True  # other literals are small and bounded by the core's own limit
    return req.received + req.size <= appendlimit


async def append(
    state: Authenticated, io: Io, cmd: c.Append, box: Mailbox | None = None
) -> bytes | None:
    """Stores the messages; sends the OK itself (returns None) or returns the refusal.

    ``box``: the mailbox found and checked by the caller (another user's mailbox)."""
    box = box or await state.store.get_mailbox(state.user_id, cmd.mailbox)
    if box is None:
        return r.no(cmd.tag, "No such mailbox", r.TRYCREATE)  # RFC 9051 §6.3.12
    datas: list[bytes] = []
    left = state.appendlimit
    for m in cmd.messages:
        try:
            data = await imap_catenate.assemble(state, m.catenate, left) if m.catenate else m.data
        except imap_catenate.CatenateRefused as e:
            return r.no(cmd.tag, e.text, e.code)
        left -= len(data)
        if left < 0:
            return r.no(cmd.tag, "Message too big", r.TOOBIG)  # RFC 7889 §4
        datas.append(data)
    now = datetime.now(UTC).replace(microsecond=0)
    items = []
    turn = TimeSlice()
    for m, data in zip(cmd.messages, datas, strict=True):
        flags = frozenset(f for f in m.flags if f.lower() != "\\recent")
        await turn.step()  # MULTIAPPEND of many: others go on between messages
        items.append((box.id, NewMessage(data, m.internal_date or now, flags)))
    view = state.view
    # \Recent to this session (RFC 3501 §2.3.2), claimed in the append's own transaction
    claim = bool(view and view.mailbox.id == box.id and view.tracks_recent and not view.readonly)
    async with io.transaction():
        # On another user's mailbox \Seen is the user's own (``imap_shared``), written by the
        # store in the append's transaction; on the user's own it is the flag.
        appended = await state.store.append(items, claim_recent=claim, seen_user=state.user_id)
        if claim and view is not None:
            view.recent.update(a.uid for a in appended)
        out = [view.learn_keywords(f for m in cmd.messages for f in m.flags) if view else b""]
        if view is not None and view.mailbox.id == box.id:
            view.dirty = True  # RFC 9051 §6.3.12: EXISTS for the selected mailbox
            out.append(await state.refresh(allow_expunge=True))
            out.append(await imap_sort.context_updates(state))  # RFC 5267 §4.3, after EXISTS
        code = r.appenduid(appended[0].uidvalidity, [a.uid for a in appended])  # RFC 4315 §3
        out.append(r.ok(cmd.tag, "APPEND completed", code))
        await io.send(b"".join(out))
    return None


async def replace(state: Selected, cmd: c.Replace, box: Mailbox | None = None) -> bytes:
    """RFC 8508: the new message stored and the old one expunged in one transaction, so a
    failed append leaves the original in place (§3.2).

    ``box``: the target found and checked by the caller (another user's mailbox, or the
    selected mailbox is another user's)."""
    view = state.selected()
    if view.readonly:
        return readonly_refusal(cmd.tag)  # RFC 8508 §3.3: the original cannot be expunged
    if cmd.uid:
        old = cmd.number if cmd.number in view.infos else None
    else:
        if cmd.number > view.max_seq:
            return r.bad(cmd.tag, "Invalid message sequence number")  # RFC 9051 §9
        old = view.uid_of(cmd.number)
    if old is None:
        return r.no(cmd.tag, "No such message", r.NONEXISTENT)
    box = box or await state.store.get_mailbox(state.user_id, cmd.mailbox)
    if box is None:
        return r.no(cmd.tag, "No such mailbox", r.TRYCREATE)  # RFC 8508 §3.3
    m = cmd.message
    try:
        limit = state.appendlimit
        data = await imap_catenate.assemble(state, m.catenate, limit) if m.catenate else m.data
    except imap_catenate.CatenateRefused as e:
        return r.no(cmd.tag, e.text, e.code)
    if len(data) > state.appendlimit:
        return r.no(cmd.tag, "Message too big", r.TOOBIG)  # RFC 7889 §4
    flags = frozenset(f for f in m.flags if f.lower() != "\\recent")
    when = m.internal_date or datetime.now(UTC).replace(microsecond=0)
    new = NewMessage(data, when, flags)
    # As for APPEND: \Seen on another user's mailbox is the user's own, in the same transaction.
    appended, gone = await state.store.replace(
        view.mailbox.id, old, box.id, new, seen_user=state.user_id
    )
    code = r.appenduid(appended.uidvalidity, [appended.uid])  # RFC 8508 §3.4
    out = [view.learn_keywords(flags), r.untagged("OK", "Replacement Message ready", code)]
    out.append(view.remove([e.uid for e in gone], qresync=state.qresync))
    if box.id == view.mailbox.id:
        view.dirty = True  # EXISTS for the replacement
    out.append(await state.refresh(allow_expunge=True))
    out.append(r.ok(cmd.tag, ("UID REPLACE" if cmd.uid else "REPLACE") + " completed"))
    return b"".join(out)
