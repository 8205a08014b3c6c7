"""SELECT and EXAMINE (with CONDSTORE and QRESYNC), CLOSE and UNSELECT.

Theory of operation
-------------------
Selecting reads the mailbox and its messages once into a ``SelectedView`` and answers with the
responses RFC 9051 §6.3.2 requires, in the usual order: FLAGS, PERMANENTFLAGS, EXISTS, (RECENT
and UNSEEN for IMAP4rev1 clients), UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ (always: every message
has a MODSEQ, so NOMODSEQ is never sent, RFC 7162 §3.1.2.1), the mailbox's LIST line for
IMAP4rev2 clients, and the tagged OK with READ-WRITE or READ-ONLY. Selecting while a mailbox
is selected first closes it with ``* OK [CLOSED]`` (RFC 7162 §3.2.11, RFC 9051 §6.3.2).

\\Recent (IMAP4rev1 only; IMAP4rev2 removed it): SELECT claims every message above the
mailbox's recent claim in the store, shared by every process, so each message is \\Recent in
exactly one session (RFC 3501 §2.3.2); messages that arrive while selected are claimed the
same way at the refresh that announces them. EXAMINE shows the unclaimed ones as \\Recent
without claiming them (RFC 3501 §6.3.2).

QRESYNC (RFC 7162 §3.2.5): when the client's UIDVALIDITY matches, the server sends
``VANISHED (EARLIER)`` for every UID expunged since the client's MODSEQ and a FETCH of the UID,
FLAGS and MODSEQ of every message changed since then, both limited to the known UIDs when the
client gave them. The expunge log is never pruned, so the sequence-match data that helps
servers with a shorter memory is not needed and is accepted without use.
"""

from __future__ import annotations

from courriel.session.imap import objects as imap_objects
from courriel.session.imap.mailboxes import DELIMITER
from courriel.session.imap.selected import MailboxGone, Overlay, SelectedView
from courriel.session.imap.state import Authenticated, Selected, SessionState
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap.sequence import MAX_NUMBER


def _close_view(state: Authenticated) -> tuple[bytes, Authenticated]:
    """Leaves the selected mailbox, if any: the response saying so and the state after it."""
    if not isinstance(state, Selected):
        return b"", state
    return r.untagged("OK", "Previous mailbox is now closed", r.CLOSED), state.unselect()


async def select(state: Authenticated, cmd: c.Select | c.Examine) -> bytes:
    if cmd.qresync is not None and not state.qresync:
        # RFC 7162 §3.2.5: QRESYNC parameters only after ENABLE QRESYNC
        return r.bad(cmd.tag, "QRESYNC must be enabled first")
    out, state = _close_view(state)
    box = await state.store.get_mailbox(state.user_id, cmd.mailbox)
    if box is None:
        return out + r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
    return out + await open_selected(state, cmd, box.id, isinstance(cmd, c.Examine))


async def open_selected(
    state: Authenticated,
    cmd: c.Select | c.Examine,
    mailbox_id: int,
    readonly: bool,
    rights: str | None = None,
    name: str | None = None,
    overlay: Overlay | None = None,
) -> bytes:
    """Selects the mailbox (found and checked by the caller; the previous one is closed);
    ``rights`` are the user's RFC 4314 rights on another user's mailbox, ``name`` the name
    the user knows it by when it is not the stored one."""
    if cmd.qresync is not None and not state.qresync:
        return r.bad(cmd.tag, "QRESYNC must be enabled first")  # RFC 7162 §3.2.5
    closed, state = _close_view(state)
    out = [closed]
    try:
        view = await SelectedView.open(state.store, mailbox_id, readonly, state.listings)
    except MailboxGone:
        return b"".join(out) + r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
    view.rights = rights
    if overlay is not None:  # the user's own \Seen on another user's mailbox (imap_shared)
        view.overlay = overlay
        seen = await overlay(state.store, list(view.infos.values()))
        view.infos = {i.uid: i for i in seen}
    if cmd.condstore:
        state.condstore = True  # RFC 7162 §3.1.8: SELECT (CONDSTORE) enables CONDSTORE
    view.tracks_recent = not state.rev2  # IMAP4rev2 has no \\Recent (RFC 9051 Appendix E)
    await view.take_recent(state.store, view.uids)
    out.append(_select_responses(state, view, name or view.mailbox.name))
    if cmd.qresync is not None and cmd.qresync.uidvalidity == view.mailbox.uidvalidity:
        out.append(await _qresync(state, view, cmd.qresync))
    view.uidonly = state.uidonly
    state.select(view)
    out.append(r.untagged("OK", "Ok", imap_objects.mailbox_id_code(view.mailbox)))  # RFC 8474
    code = r.READ_ONLY if readonly else r.READ_WRITE
    verb = "EXAMINE" if readonly else "SELECT"
    out.append(r.ok(cmd.tag, f"{verb} completed", code))
    return b"".join(out)


def _select_responses(state: SessionState, view: SelectedView, name: str) -> bytes:
    box = view.mailbox
    out = [view.flags_responses(), r.exists(view.max_seq)]
    if not state.rev2:
        out.append(r.recent(len(view.recent)))  # RFC 3501 §7.3.2
        first = view.unseen_first()
        if first is not None:
            out.append(r.untagged("OK", "First unseen", b"UNSEEN %d" % first))  # RFC 3501 §6.3.1
    out += [
        r.untagged("OK", "UIDs valid", r.uidvalidity(box.uidvalidity)),
        r.untagged("OK", "Predicted next UID", r.uidnext(box.uidnext)),
        r.untagged("OK", "Highest", r.highestmodseq(box.highestmodseq)),
    ]
    if state.rev2:
        attrs = [box.special_use] if box.special_use else []
        out.append(r.list_item(attrs, DELIMITER, name, utf8=state.utf8))  # RFC 9051 §6.3.2
    return b"".join(out)


async def _qresync(state: SessionState, view: SelectedView, params: c.QResyncParams) -> bytes:
    mailbox_id = view.mailbox.id
    known = params.known_uids

    def wanted(uid: int) -> bool:
        return known is None or known.contains(uid, MAX_NUMBER)

    out: list[bytes] = []
    gone = [e.uid for e in await state.store.expunged_since(mailbox_id, params.modseq)]
    gone = [u for u in gone if wanted(u) and u not in view.infos]
    if gone:
        out.append(r.vanished(gone, earlier=True))  # RFC 7162 §3.2.5.2
    for info in await state.store.changes_since(mailbox_id, params.modseq):
        if wanted(info.uid) and info.uid in view.infos:
            out.append(view.flag_fetch(view.infos[info.uid], condstore=True))
    return b"".join(out)


async def close(state: Selected, cmd: c.Close | c.Unselect) -> bytes:
    view = state.selected()
    state.unselect()
    if isinstance(cmd, c.Close) and not view.readonly:
        # RFC 9051 §6.4.1: CLOSE expunges \Deleted messages silently.
        await state.store.expunge_deleted(view.mailbox.id)
    return r.ok(cmd.tag, ("CLOSE" if isinstance(cmd, c.Close) else "UNSELECT") + " completed")
