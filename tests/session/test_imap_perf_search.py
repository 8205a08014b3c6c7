"""SEARCH on header keys reads only the header fields of the stored parse: ``search_fields_of``
gives what ``MessageMeta.from_bytes`` gives for them, and the session's answers do not change."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.mail.message import (
    SEARCH_FIELDS,
    MessageMeta,
    MetaFormatError,
    parse,
    search_fields_of,
)
from courriel.session.imap import messages as imap_messages
from courriel.session.imap import search as imap_search
from courriel.session.imap import select as imap_select
from courriel.session.imap.state import Authenticated, Selected
from courriel.store.base import MessageInfo, Store
from courriel.store.sqlite import open_sqlite
from courriel.testing.fill import add_user, delivered
from courriel.wire.imap import commands as c
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command

MESSAGES = Path(__file__).parent / "messages"

SAMPLES = [
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: budget 2026\r\n"
    b"Date: Mon, 05 Jan 2026 08:37:00 +0100\r\nMessage-ID: <1@example.org>\r\n\r\nHello\r\n",
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: =?utf-8?b?QnVkZ2V0IMOpdMOp?=\r\n"
    b'Cc: "Quoted, Name" <q@example.org>\r\n\r\nno date here\r\n',
    b"Subject: only a subject\nDate: not a date\n\nbare LF lines\n",
    b"\r\nno header at all\r\n",
    b'From: x@example.org\r\nSubject: tricky [[],"\\\\ {}\r\nReferences: <a@b> <c@d>\r\n\r\nx\r\n',
    *(p.read_bytes() for p in sorted(MESSAGES.glob("*.eml"))),
]


@pytest.mark.parametrize("raw", SAMPLES)
def test_search_fields_match_the_whole_parse(raw: bytes) -> None:
    data = parse(raw).to_bytes()
    whole = MessageMeta.from_bytes(data)
    fields = search_fields_of(data)
    assert fields.header_size == whole.header_size
    assert fields.date == whole.date
    assert dict(fields.text_headers) == dict(whole.text_headers)
    assert set(fields.text_headers) == set(whole.raw_headers)  # presence for HEADER name ""


@pytest.mark.parametrize("cut", [0, 5, 17, -1, -40])
def test_search_fields_refuse_damaged_meta(cut: int) -> None:
    data = parse(SAMPLES[0]).to_bytes()
    with pytest.raises(MetaFormatError):
        search_fields_of(data[:cut])


@pytest.mark.parametrize("tail", [b'{"size":1}', b"[1,2,3]", b'[1,2,null,{},{"a":"b"},[]]'])
def test_search_fields_refuse_a_tail_that_is_not_version_one(tail: bytes) -> None:
    data = parse(SAMPLES[0]).to_bytes()
    version, a, b, c, _ = struct.unpack_from("<BIIII", data)
    items = data[17 : 17 + a + b + c]
    damaged = struct.pack("<BIIII", version, a, b, c, len(tail)) + items + tail
    with pytest.raises(MetaFormatError):
        search_fields_of(damaged)


def _cmd(text: bytes) -> c.Command:
    return parse_command([text], [], limits=Limits(), utf8=False)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        yield store
    finally:
        await store.close()


async def _selected(store: Store) -> Selected:
    user = await add_user(store, "u@example.org", "secret")
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    await store.append(
        [
            (inbox.id, delivered(raw, flags={"\\Seen"} if i % 2 else ()))
            for i, raw in enumerate(SAMPLES)
        ]
    )
    state = Authenticated(store, 10**7, user=user)
    select = _cmd(b"s SELECT INBOX")
    assert isinstance(select, c.Select)
    assert b"s OK" in await imap_select.select(state, select)
    assert isinstance(state.moved_to, Selected)
    return state.moved_to


def _expected(state: Selected, metas: dict[int, MessageMeta], text: bytes) -> list[int]:
    """Message numbers matching, evaluated on the whole parse as before the partial decode."""
    cmd = _cmd(text)
    assert isinstance(cmd, c.Search)
    view = state.selected()
    return [
        n
        for n, uid in enumerate(view.uids, 1)
        if imap_search.matches(cmd.criteria, n, view.infos[uid], metas[uid], None, view)
    ]


@pytest.mark.parametrize(
    "criteria",
    [
        b'SUBJECT "budget"',
        b'FROM "jurgen"',
        b'FROM "J\xc3\xbcrgen"',
        b'HEADER CC ""',
        b'HEADER REFERENCES "<c@d>"',
        b"SENTSINCE 1-Jan-2026",
        b"SENTBEFORE 1-Jan-2030",
        b'OR SUBJECT "tricky" NOT SEEN',
        b'NOT SUBJECT "budget"',
    ],
)
async def test_header_search_answers_as_the_whole_parse_does(
    sqlite: Store, criteria: bytes
) -> None:
    state = await _selected(sqlite)
    view = state.selected()
    stored = await sqlite.get_meta(view.mailbox.id, view.uids)
    metas = {uid: MessageMeta.from_bytes(data) for uid, data in stored.items()}
    expected = _expected(state, metas, b"x SEARCH CHARSET UTF-8 " + criteria)
    cmd = _cmd(b"t SEARCH CHARSET UTF-8 " + criteria)
    assert isinstance(cmd, c.Search)
    reply = await imap_messages.search(state, cmd)
    first = reply.split(b"\r\n")[0]
    assert first == b"* SEARCH" + b"".join(b" %d" % n for n in expected)
    assert reply.endswith(b"t OK SEARCH completed\r\n")


async def test_body_search_still_reads_the_whole_parse(sqlite: Store) -> None:
    state = await _selected(sqlite)
    cmd = _cmd(b't SEARCH OR BODY "bare LF" SUBJECT "budget"')
    assert isinstance(cmd, c.Search)
    reply = await imap_messages.search(state, cmd)
    numbers = [int(n) for n in reply.split(b"\r\n")[0].split()[2:]]
    assert numbers == [1, 2, 3]  # 2: its encoded subject reads "Budget été"


class _OneMessage:
    """The view of a mailbox holding message 1 (UID 1) alone."""

    max_seq = max_uid = 1
    saved: frozenset[int] = frozenset()

    def seq_of(self, uid: int) -> int | None:
        return uid if uid == 1 else None

    def uid_of(self, seq: int) -> int:
        return seq


def test_body_keys_refuse_search_fields_alone() -> None:
    data = parse(SAMPLES[0]).to_bytes()
    cmd = _cmd(b't SEARCH BODY "hello"')
    assert isinstance(cmd, c.Search)
    assert imap_search.plan_search(cmd.criteria).needs_body

    info = MessageInfo(1, 1, frozenset(), datetime.now(UTC), len(SAMPLES[0]))
    with pytest.raises(ValueError, match="whole message meta"):
        imap_search.matches(
            cmd.criteria, 1, info, search_fields_of(data), SAMPLES[0], _OneMessage()
        )
    assert imap_search.matches(
        cmd.criteria, 1, info, MessageMeta.from_bytes(data), SAMPLES[0], _OneMessage()
    )


def test_search_fields_cover_every_search_field() -> None:
    raw = b"".join(f"{n}: v-{n}\r\n".encode() for n in SEARCH_FIELDS) + b"\r\nbody\r\n"
    fields = search_fields_of(parse(raw).to_bytes())
    assert {k: v for k, v in fields.text_headers.items() if k != "date"} == {
        n: f"v-{n}" for n in SEARCH_FIELDS if n != "date"
    }


@pytest.mark.parametrize(
    ("criteria", "names", "sent"),
    [
        (b'SUBJECT "a"', {"subject"}, False),
        (b'OR FROM "a" NOT TO "b"', {"from", "to"}, False),
        (b"SENTON 1-Jan-2026 SEEN", set(), True),
        (b'SENTSINCE 1-Jan-2026 HEADER X-Other "v" CC "c"', {"cc"}, True),
        (b'BODY "x" UNSEEN', set(), False),
    ],
)
def test_compared_fields_lists_what_header_keys_compare(
    criteria: bytes, names: set[str], sent: bool
) -> None:
    cmd = _cmd(b"t SEARCH " + criteria)
    assert isinstance(cmd, c.Search)
    assert imap_search.compared_fields(cmd.criteria) == (frozenset(names), sent)


def test_field_cache_keeps_what_was_compared() -> None:
    cache = imap_search.FieldCache()
    fields = search_fields_of(parse(SAMPLES[0]).to_bytes())
    assert cache.missing({"subject"}, False, [1, 2]) == [1, 2]
    cache.add(1, fields, {"subject", "cc"}, False)
    assert cache.missing({"subject"}, False, [1, 2]) == [2]
    assert cache.missing({"from"}, False, [1]) == [1]  # another field: read again
    assert cache.missing({"subject"}, True, [1]) == [1]  # the Date was not kept
    kept = cache.fields(1, {"subject", "cc"}, False)
    assert kept is not None
    assert dict(kept.text_headers) == {"subject": "budget 2026"}  # no Cc: absent, as parsed
    assert kept.header_size == fields.header_size
    cache.add(1, fields, {"subject"}, True)
    again = cache.fields(1, {"subject"}, True)
    assert again is not None and again.date == fields.date
    assert cache.fields(2, {"subject"}, False) is None
    cache.drop([1])
    assert len(cache) == 0


async def test_repeated_search_answers_as_the_first_one(sqlite: Store) -> None:
    state = await _selected(sqlite)
    view = state.selected()
    first = _cmd(b't SEARCH OR SUBJECT "budget" SENTBEFORE 1-Jan-2027')
    assert isinstance(first, c.Search)
    reply = await imap_messages.search(state, first)
    assert len(view.fields) > 0  # the fields compared are kept for the mailbox
    assert await imap_messages.search(state, first) == reply
    # Another session of the same mailbox finds them kept, and answers the same.
    examining = Authenticated(sqlite, 10**7, user=state.user, listings=state.listings)
    select = _cmd(b"s EXAMINE INBOX")
    assert isinstance(select, c.Examine)
    await imap_select.select(examining, select)
    other = examining.moved_to
    assert isinstance(other, Selected)
    assert other.selected().fields is view.fields
    assert await imap_messages.search(other, first) == reply
