"""SELECT from a kept listing and FETCH of row items: the same answers as reading everything.

``Listings`` brings a kept listing up to date from the expunge log and the changed messages;
after any mix of changes it must equal what ``list_messages`` reads, and a view opened from it
must answer SELECT and FETCH exactly as one opened from a full read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.mail.message import search_fields_of
from courriel.session.imap import fetch as imap_fetch
from courriel.session.imap import select as imap_select
from courriel.session.imap.search import FieldCache
from courriel.session.imap.selected import Listings, SelectedView
from courriel.session.imap.state import Authenticated, Selected
from courriel.store.base import FlagOp, Mailbox, Store, User
from courriel.store.sqlite import open_sqlite
from courriel.testing.fill import add_user, delivered
from courriel.wire.imap import commands as c
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command


def _raw(n: int) -> bytes:
    return f"From: a{n}@example.org\r\nSubject: message {n}\r\n\r\nbody {n}\r\n".encode()


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        yield store
    finally:
        await store.close()


async def _inbox(store: Store, count: int) -> tuple[User, Mailbox]:
    user = await add_user(store, "u@example.org", "secret")
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    if count:
        await store.append([(inbox.id, delivered(_raw(n))) for n in range(count)])
    return user, inbox


async def _read(listings: Listings, store: Store, mailbox_id: int) -> FieldCache:
    box = await store.get_mailbox_by_id(mailbox_id)
    assert box is not None
    infos, modseq, fields = await listings.read(store, box)
    assert infos == await store.list_messages(mailbox_id)
    assert modseq >= box.highestmodseq
    return fields


async def test_listing_follows_flags_expunges_and_appends(sqlite: Store) -> None:
    _, inbox = await _inbox(sqlite, 30)
    listings = Listings()
    await _read(listings, sqlite, inbox.id)
    await sqlite.store_flags(inbox.id, [2, 5, 9], FlagOp.ADD, frozenset({"\\Seen", "work"}))
    await sqlite.expunge(inbox.id, [1, 5, 30])
    await sqlite.append([(inbox.id, delivered(_raw(n))) for n in range(3)])
    await sqlite.store_flags(inbox.id, [31], FlagOp.ADD, frozenset({"\\Flagged"}))
    fields = await _read(listings, sqlite, inbox.id)
    meta = await sqlite.get_meta(inbox.id, [31, 32])
    for uid, data in meta.items():
        fields.add(uid, search_fields_of(data), {"subject"}, False)
    await sqlite.expunge(inbox.id, [31, 32, 33])
    assert await _read(listings, sqlite, inbox.id) is fields
    assert len(fields) == 0  # the fields of expunged messages go with them
    await _read(listings, sqlite, inbox.id)  # nothing changed in between


async def test_listing_of_a_mailbox_made_again_is_read_afresh(sqlite: Store) -> None:
    user, _ = await _inbox(sqlite, 0)
    box = await sqlite.create_mailbox(user.id, "Work")
    await sqlite.append([(box.id, delivered(_raw(n))) for n in range(5)])
    listings = Listings()
    fields = await _read(listings, sqlite, box.id)
    await sqlite.delete_mailbox(user.id, "Work")
    again = await sqlite.create_mailbox(user.id, "Work")
    await sqlite.append([(again.id, delivered(_raw(n))) for n in range(2)])
    assert await _read(listings, sqlite, again.id) is not fields


async def test_listings_stay_within_their_bound(sqlite: Store) -> None:
    user, inbox = await _inbox(sqlite, 8)
    other = await sqlite.create_mailbox(user.id, "Other")
    await sqlite.append([(other.id, delivered(_raw(n))) for n in range(6)])
    listings = Listings(max_messages=10)
    await _read(listings, sqlite, inbox.id)
    await _read(listings, sqlite, other.id)  # 14 > 10: the older listing goes
    assert sum(len(e.infos) for e in listings._entries.values()) <= 10
    await sqlite.store_flags(inbox.id, [3], FlagOp.ADD, frozenset({"\\Seen"}))
    await _read(listings, sqlite, inbox.id)


async def test_view_from_a_kept_listing_equals_a_fresh_one(sqlite: Store) -> None:
    _, inbox = await _inbox(sqlite, 12)
    listings = Listings()
    await SelectedView.open(sqlite, inbox.id, False, listings)  # keeps the listing
    await sqlite.store_flags(inbox.id, [4], FlagOp.ADD, frozenset({"$Label1"}))
    await sqlite.expunge(inbox.id, [7])
    kept = await SelectedView.open(sqlite, inbox.id, False, listings)
    assert inbox.id in listings._entries  # the second open was served from the kept listing
    box = await sqlite.get_mailbox_by_id(inbox.id)
    assert box is not None
    fresh = SelectedView(box, False, await sqlite.list_messages(inbox.id))
    assert kept.uids == fresh.uids
    assert kept.infos == fresh.infos
    assert kept.keywords == fresh.keywords == {"$Label1"}
    assert kept.modseq >= fresh.modseq
    await sqlite.store_flags(inbox.id, [4], FlagOp.REMOVE, frozenset({"$Label1"}))
    # A keyword no message carries any more is not offered again (FLAGS, RFC 9051 §7.3.5).
    assert (await SelectedView.open(sqlite, inbox.id, False, listings)).keywords == set()


class _Collect:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    def transaction(self) -> object:
        raise AssertionError("FETCH opens no transaction")


@pytest.mark.parametrize(
    ("command", "condstore"),
    [
        (b"f FETCH 1:* (FLAGS UID)", False),
        (b"f UID FETCH 1:* (FLAGS)", False),
        (b"f FETCH 2,5:* (RFC822.SIZE FLAGS MODSEQ UID)", False),
        (b"f FETCH 1:* FLAGS", True),
        (b"f UID FETCH 2,9:200,300:* (FLAGS)", False),  # gaps, and UID 10 expunged
    ],
)
async def test_row_fetch_renders_as_render_fetch(
    sqlite: Store, command: bytes, condstore: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap_fetch, "FLUSH_BYTES", 2048)  # several pieces from 400 messages
    user, inbox = await _inbox(sqlite, 400)
    await sqlite.store_flags(inbox.id, list(range(1, 400, 3)), FlagOp.ADD, frozenset({"\\Seen"}))
    await sqlite.store_flags(inbox.id, [5, 6], FlagOp.ADD, frozenset({"b", "a", "\\Draft"}))
    await sqlite.expunge(inbox.id, [10])
    authenticated = Authenticated(sqlite, 10**7, user=user, condstore=condstore)
    select = parse_command([b"s SELECT INBOX"], [], limits=Limits(), utf8=False)
    assert isinstance(select, c.Select)
    await imap_select.select(authenticated, select)
    state = authenticated.moved_to
    assert isinstance(state, Selected)
    cmd = parse_command([command], [], limits=Limits(), utf8=False)
    assert isinstance(cmd, c.Fetch)
    io = _Collect()
    reply = await imap_fetch.fetch(state, io, cmd)  # type: ignore[arg-type]
    assert len(io.sent) > 1  # sent in pieces as it goes
    view = state.selected()
    plan = imap_fetch.plan_fetch(cmd.attributes, uid=cmd.uid, condstore=condstore)
    expected = b"".join(
        imap_fetch.render_fetch(
            view.seq_of(u) or 0,
            view.infos[u],
            plan,
            None,
            None,
            utf8=False,
            recent=u in view.recent,  # this rev1 session's SELECT claimed them all
        )
        for u in view.resolve(cmd.sequence_set, uid=cmd.uid)
    )
    # RFC 7162 §3.1: a FETCH of MODSEQ is the first CONDSTORE-enabling command here
    code = b"" if condstore or b"MODSEQ" not in command else b"[HIGHESTMODSEQ %d] " % view.modseq
    tag = b"f OK " + code + (b"UID FETCH" if cmd.uid else b"FETCH") + b" completed\r\n"
    if code:  # announced untagged too, before the tagged OK
        tag = b"* OK " + code + b"Highest\r\n" + tag
    assert view.recent == set(view.uids)
    assert b"".join(io.sent) + reply == expected + tag
