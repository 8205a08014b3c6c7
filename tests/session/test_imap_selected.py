"""The selected view against a real SQLite store: resolving sets, refreshing after changes
made through the store, and holding back expunges."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from courriel.session.imap import fetch as imap_fetch
from courriel.session.imap import messages as imap_messages
from courriel.session.imap.selected import BadSequenceError, MailboxGone, SelectedView
from courriel.session.imap.state import Selected
from courriel.store.base import (
    Change,
    ChangeKind,
    FlagOp,
    Mailbox,
    MessageInfo,
    NewMessage,
    Store,
)
from courriel.wire.imap import commands as c
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command
from courriel.wire.imap.sequence import STAR, SequenceSet


@pytest.fixture
async def inbox(store: Store) -> Mailbox:
    await store.add_domain("example.test")
    user = await store.add_user("alice@example.test", "x")
    box = await store.get_mailbox(user.id, "INBOX")
    assert box is not None
    return box


async def add(store: Store, box: Mailbox, n: int) -> None:
    now = datetime.now(UTC)
    for i in range(n):
        raw = f"Subject: {i}\r\n\r\nbody\r\n".encode()
        await store.append([(box.id, NewMessage(raw, now))])


def seqset(*ranges: tuple[int, int]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


async def test_resolve_sequence_numbers_and_uids(store: Store, inbox: Mailbox) -> None:
    await add(store, inbox, 4)
    await store.expunge(inbox.id, [2])
    view = await SelectedView.open(store, inbox.id, readonly=False)
    assert view.uids == [1, 3, 4]
    assert view.resolve(seqset((2, STAR)), uid=False) == [3, 4]
    assert view.resolve(seqset((2, 3), (9, 12)), uid=True) == [3]  # missing UIDs are ignored
    assert view.resolve(seqset((STAR, STAR)), uid=True) == [4]
    with pytest.raises(BadSequenceError):
        view.resolve(seqset((4, 4)), uid=False)  # RFC 9051 §9: only 3 messages
    view.saved = {4, 2}
    assert view.resolve(SequenceSet(saved=True), uid=False) == [4]


async def test_refresh_reports_new_flags_and_expunges_once(store: Store, inbox: Mailbox) -> None:
    await add(store, inbox, 3)
    view = await SelectedView.open(store, inbox.id, readonly=False)
    await store.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"\\Flagged"}))
    await store.expunge(inbox.id, [2])
    await add(store, inbox, 1)
    view.dirty = True
    out = await view.refresh(store, allow_expunge=True, qresync=False, condstore=False)
    assert out == (b"* 2 EXPUNGE\r\n* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n* 3 EXISTS\r\n")
    assert view.uids == [1, 3, 4]
    view.dirty = True  # the same changes again: nothing new to say
    assert await view.refresh(store, allow_expunge=True, qresync=False, condstore=False) == b""


async def test_expunges_wait_until_they_are_allowed(store: Store, inbox: Mailbox) -> None:
    await add(store, inbox, 3)
    view = await SelectedView.open(store, inbox.id, readonly=False)
    await store.expunge(inbox.id, [1, 3])
    view.dirty = True
    assert await view.refresh(store, allow_expunge=False, qresync=False, condstore=False) == b""
    assert view.max_seq == 3 and view.pending == {1, 3}  # numbers unchanged meanwhile
    out = await view.refresh(store, allow_expunge=True, qresync=False, condstore=False)
    assert out == b"* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n"  # highest first: no renumbering between
    assert view.uids == [2]


async def test_qresync_reports_vanished_and_condstore_adds_modseq(
    store: Store, inbox: Mailbox
) -> None:
    await add(store, inbox, 3)
    view = await SelectedView.open(store, inbox.id, readonly=False)
    await store.expunge(inbox.id, [1, 2])
    result = await store.store_flags(inbox.id, [3], FlagOp.ADD, frozenset({"$Done"}))
    modseq = result.changed[0].modseq
    view.dirty = True
    out = await view.refresh(store, allow_expunge=True, qresync=True, condstore=True)
    assert out.split(b"\r\n")[:-1] == [
        b"* VANISHED 1:2",
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Done)",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Done \\*)]"
        b" Flags permitted",
        b"* 1 FETCH (UID 3 FLAGS ($Done) MODSEQ (%d))" % modseq,  # number after the VANISHED,
    ]


async def test_a_deleted_mailbox_is_reported(store: Store, inbox: Mailbox) -> None:
    box = await store.create_mailbox(inbox.user_id, "Work")
    view = await SelectedView.open(store, box.id, readonly=True)
    await store.delete_mailbox(inbox.user_id, "Work")
    view.dirty = True
    with pytest.raises(MailboxGone):
        await view.refresh(store, allow_expunge=True, qresync=False, condstore=False)


def test_removing_most_of_a_large_view_is_linear(inbox: Mailbox) -> None:
    # 100,000 messages, 99,000 of them expunged at once: one pass, not one list deletion
    # per message (which took seconds and held every other client's loop).
    now = datetime.now(UTC)
    infos = [MessageInfo(u, 1, frozenset(), now, 10) for u in range(1, 100_001)]
    view = SelectedView(inbox, False, infos)
    gone = [u for u in range(1, 100_001) if u % 100]
    started = time.perf_counter()
    out = view.remove(gone, qresync=False)
    assert time.perf_counter() - started < 2.0
    assert view.uids == list(range(100, 100_001, 100))
    lines = out.split(b"\r\n")
    # Highest first: 99,999 is number 99,999 before anything moves, and 1 is number 1 last.
    assert lines[0] == b"* 99999 EXPUNGE" and lines[-2] == b"* 1 EXPUNGE"
    assert len(lines) - 1 == len(gone)
    assert view.seq_of(100) == 1 and view.seq_of(100_000) == 1000


class _Sent:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    def transaction(self) -> object:
        raise AssertionError("no transaction here")


def _command(line: bytes) -> object:
    return parse_command([line], [], limits=Limits(), utf8=False)


@pytest.mark.parametrize("line", [b"f STORE 1 +FLAGS (\\Answered)", b"f FETCH 1 (BODY[])"])
async def test_keyword_set_elsewhere_is_announced_before_a_fetch_shows_it(
    store: Store, inbox: Mailbox, line: bytes
) -> None:
    # RFC 9051 §7.3.5: the FLAGS response announcing $Label3 comes before the FETCH with it.
    await add(store, inbox, 2)
    user = await store.get_user("alice@example.test")
    view = await SelectedView.open(store, inbox.id, readonly=False)
    state = Selected(store, 10**6, user=user, view=view)
    # Another session sets a keyword; this one has not refreshed yet.
    await store.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"$Label3"}))
    cmd = _command(line)
    io = _Sent()
    if isinstance(cmd, c.Store):
        reply = await imap_messages.store(state, cmd)
    else:
        assert isinstance(cmd, c.Fetch)
        reply = await imap_fetch.fetch(state, io, cmd)  # type: ignore[arg-type]
    out = b"".join(io.sent) + reply
    flags = out.index(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label3)\r\n")
    assert out.index(b"* OK [PERMANENTFLAGS (") > flags
    fetch = out.index(b"* 1 FETCH (")
    assert fetch > flags
    assert b"$Label3" in out[fetch:]  # the FETCH shows it (after BODY[]'s literal, if any)
    assert out.count(b"* FLAGS") == 1


async def _run(state: Selected, line: bytes) -> bytes:
    cmd = _command(line)
    assert isinstance(cmd, c.Fetch)
    io = _Sent()
    reply = await imap_fetch.fetch(state, io, cmd)  # type: ignore[arg-type]
    return b"".join(io.sent) + reply


async def test_fetch_of_a_message_expunged_elsewhere(store: Store, inbox: Mailbox) -> None:
    await add(store, inbox, 3)
    user = await store.get_user("alice@example.test")
    view = await SelectedView.open(store, inbox.id, readonly=True)
    state = Selected(store, 10**6, user=user, view=view)
    await store.expunge(inbox.id, [1])  # another session; this one has not heard yet
    # RFC 2180 §4.1.1: what the view holds is still served, the EXPUNGE held back.
    out = await _run(state, b"f FETCH 1 (FLAGS RFC822.SIZE INTERNALDATE)")
    assert out.startswith(b"* 1 FETCH (FLAGS () RFC822.SIZE ")
    assert out.endswith(b"f OK FETCH completed\r\n") and b"EXPUNGE" not in out
    # By number the body is gone and the EXPUNGE may not be sent (RFC 9051 §7.5.1).
    out = await _run(state, b"f FETCH 1:2 (BODY.PEEK[])")
    assert b"* 2 FETCH (BODY[] {" in out and b"* 1 FETCH" not in out
    assert out.endswith(b"f NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n")
    # A UID FETCH may carry the EXPUNGE: announced, and the command succeeds.
    out = await _run(state, b"f UID FETCH 1:3 (BODY.PEEK[])")
    assert b"* 2 FETCH (UID 2 BODY[] {" in out and b"* 3 FETCH (UID 3 BODY[] {" in out
    assert out.endswith(b"* 1 EXPUNGE\r\nf OK UID FETCH completed\r\n")
    assert state.selected().uids == [2, 3]


async def test_own_writes_cost_no_read_and_others_are_still_seen(
    store: Store, inbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add(store, inbox, 3)
    user = await store.get_user("alice@example.test")
    assert user is not None
    view = await SelectedView.open(store, inbox.id, readonly=False)
    state = Selected(store, 10**7, user=user, view=view)
    calls: list[str] = []
    for name in ("mailbox_since", "get_mailbox_by_id", "expunged_since", "changes_since"):
        original = getattr(store, name)

        async def counted(
            *args: object, _name: str = name, _f: object = original, **kw: object
        ) -> object:
            calls.append(_name)
            return await _f(*args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(store, name, counted)

    def event(modseq: int, kind: ChangeKind = ChangeKind.FLAGS_CHANGED) -> Change:
        return Change(user.id, inbox.id, kind, modseq, ())

    cmd = parse_command([b"t STORE 1 +FLAGS.SILENT (\\Seen)"], [], limits=Limits(), utf8=False)
    assert isinstance(cmd, c.Store)
    await imap_messages.store(state, cmd)
    view.hear(event(view.modseq))  # the event of the session's own write
    assert not view.needs_refresh
    view.dirty = True  # were it read again anyway, one read would show nothing changed
    calls.clear()
    assert await view.refresh(store, allow_expunge=True, qresync=False, condstore=False) == b""
    assert calls == ["mailbox_since"]
    # A change made elsewhere after it is heard, read and announced as before.
    await store.store_flags(inbox.id, [2], FlagOp.ADD, frozenset({"\\Flagged"}))
    view.hear(event(view.modseq + 1))
    assert view.needs_refresh
    calls.clear()
    out = await view.refresh(store, allow_expunge=True, qresync=False, condstore=False)
    assert out == b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n"
    assert calls == ["mailbox_since"]  # the mailbox and what changed, in one read
    # A write of this session with another one's before it does not skip that one.
    await store.store_flags(inbox.id, [3], FlagOp.ADD, frozenset({"\\Answered"}))
    other = parse_command([b"u STORE 2 +FLAGS.SILENT (\\Seen)"], [], limits=Limits(), utf8=False)
    assert isinstance(other, c.Store)
    await imap_messages.store(state, other)
    view.hear(event(view.modseq + 2))
    out = await view.refresh(store, allow_expunge=True, qresync=False, condstore=False)
    assert out == b"* 3 FETCH (UID 3 FLAGS (\\Answered))\r\n"
    assert view.modseq == (await store.get_mailbox_by_id(inbox.id) or inbox).highestmodseq
    # Events without a MODSEQ, and of other kinds, always have the view read again.
    view.hear(event(0))
    assert view.needs_refresh
    await view.refresh(store, allow_expunge=True, qresync=False, condstore=False)
    view.hear(event(1, ChangeKind.MAILBOX_RENAMED))
    assert view.needs_refresh
