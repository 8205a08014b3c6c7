"""Property: SEARCH answered from the store's search texts (migration 0022) gives exactly what
comparing each message's parsed fields gives, on many generated messages with encoded words,
non-ASCII text, comments, quoting and groups; and so does the first search after the texts were
made for older messages."""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courriel.mail import searchtext
from courriel.mail.message import MessageMeta
from courriel.session.imap import messages as imap_messages
from courriel.session.imap import search as imap_search
from courriel.session.imap import select as imap_select
from courriel.session.imap.state import Authenticated, Selected
from courriel.store.base import Store
from courriel.store.sql.core import Done, Query, Script
from courriel.store.sql.store import SqlStore
from courriel.store.sqlite import open_sqlite
from courriel.testing.fill import add_user, delivered
from courriel.wire.imap import commands as c
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parser import parse_command

WORDS = [
    "budget", "Budget", "BUDGET", "réunion", "Été", "straße", "STRASSE", "ǅemal", "ﬁle",
    "café", "cafe\u0301", "naïve", "Ωmega", "日本語", "x_y", "50%", "a.b", "re:", "\u210cello",
]  # fmt: skip
NAMES = ["Ann", "Jürgen Müller", "O'Neil, Pat", "Zoë", "bob", "Ünal (work)"]
DOMAINS = ["example.org", "exämple.test", "example.net"]


def _encoded(text: str, rng: random.Random) -> str:
    """``text`` as written in a header: plain, or one RFC 2047 word in B or Q."""
    if text.isascii() and rng.random() < 0.5:
        return text
    data = text.encode("utf-8")
    if rng.random() < 0.5:
        return f"=?utf-8?b?{base64.b64encode(data).decode()}?="
    q = "".join(chr(b) if chr(b).isalnum() and b < 128 else f"={b:02X}" for b in data)
    return f"=?UTF-8?q?{q}?="


def _address(rng: random.Random) -> str:
    local = rng.choice(["ann", "bob", "j.m", "user"])
    domain = rng.choice(DOMAINS[::2])  # ASCII domains: the others are not valid unencoded
    name = rng.choice(NAMES)
    form = rng.randrange(6)
    if form == 0:
        return f"{local}@{domain}"
    if form == 1:
        return f"{_encoded(name, rng)} <{local}@{domain}>"
    if form == 2:
        return f'"{name.encode("ascii", "replace").decode()}" <{local}@{domain}>'
    if form == 3:
        return f"{local}@{domain} ({_encoded(name, rng)})"
    if form == 4:
        return f"{local} @ {domain}"
    return f"team: {local}@{domain};"


def _message(rng: random.Random) -> bytes:
    lines = []
    if rng.random() < 0.9:
        words = [_encoded(rng.choice(WORDS), rng) for _ in range(rng.randrange(1, 4))]
        lines.append("Subject: " + " ".join(words))
    for name in ("From", "To", "Cc", "Bcc"):
        if rng.random() < 0.7:
            lines.append(f"{name}: " + ", ".join(_address(rng) for _ in range(rng.randrange(1, 3))))
    if rng.random() < 0.5:
        lines.append(f"Message-ID: <{rng.randrange(1000)}@example.org>")
    rng.shuffle(lines)
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode("utf-8")


NEEDLES = [
    "budget", "BUDGET", "réu", "ÉTÉ", "été", "strasse", "STRASSE", "ss", "dž", "fi", "café",
    "cafe", "é", "naï", "ωmega", "日本", "x_y", "_", "%", "50%", "a.b", "re:", "hello", "h",
    "jürgen", "müller", "o'neil", "zoë", "ünal", "work", "ann <ann@", "ann@example.org",
    "user@example.org", "j.m@", "team", "example", "@", " ", "", "nothing-here",
]  # fmt: skip
FIELDS = ["SUBJECT", "FROM", "TO", "CC", "BCC", "HEADER SUBJECT", "HEADER FROM", "HEADER TO"]


def _quoted(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8") + b'"'


def _criteria(rng: random.Random) -> list[bytes]:
    out = []
    for field in FIELDS:
        for needle in NEEDLES:
            out.append(field.encode() + b" " + _quoted(needle))
    for _ in range(40):  # trees mixing stored keys with others
        a = rng.choice(FIELDS).encode() + b" " + _quoted(rng.choice(NEEDLES))
        b = rng.choice(FIELDS).encode() + b" " + _quoted(rng.choice(NEEDLES))
        other = rng.choice([b"SEEN", b'HEADER MESSAGE-ID "1"', b"SENTBEFORE 1-Jan-2030"])
        out += [b"OR " + a + b" " + b, b"NOT " + a, a + b" " + other, b"OR " + other + b" " + a]
    return out


def _cmd(text: bytes) -> c.Command:
    return parse_command([text], [], limits=Limits(), utf8=False)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        yield store
    finally:
        await store.close()


def _forget(mailbox_id: int) -> Script[Done[None]]:
    """What messages stored before migration 0022 look like."""
    yield Query("DELETE FROM message_search WHERE mailbox_id = ?", (mailbox_id,), False)
    return Done(None)


async def test_stored_texts_answer_as_the_parsed_fields(sqlite: Store) -> None:
    rng = random.Random(2026)
    raws = [_message(rng) for _ in range(150)]
    user = await add_user(sqlite, "u@example.org", "secret")
    inbox = await sqlite.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    await sqlite.append(
        [(inbox.id, delivered(r, ("\\Seen",) if i % 3 else ())) for i, r in enumerate(raws)]
    )
    authenticated = Authenticated(sqlite, 10**7, user=user)
    select = _cmd(b"s SELECT INBOX")
    assert isinstance(select, c.Select)
    await imap_select.select(authenticated, select)
    state = authenticated.moved_to
    assert isinstance(state, Selected)
    view = state.selected()
    stored = await sqlite.get_meta(view.mailbox.id, view.uids)
    metas = {uid: MessageMeta.from_bytes(data) for uid, data in stored.items()}
    criteria = _criteria(rng)
    hits_seen = 0
    for rounds in range(2):
        if rounds == 1:  # as if stored before migration 0022: made on the first search
            assert isinstance(sqlite, SqlStore)
            await sqlite._write(_forget(inbox.id))
        for text in criteria:
            cmd = _cmd(b"t SEARCH CHARSET UTF-8 " + text)
            assert isinstance(cmd, c.Search)
            wanted = [
                n
                for n, uid in enumerate(view.uids, 1)
                if imap_search.matches(cmd.criteria, n, view.infos[uid], metas[uid], None, view)
            ]
            got = await imap_messages.search_matches(
                state, view, imap_search.plan_search(cmd.criteria), cmd.criteria
            )
            assert [n for n, _ in got] == wanted, text
            hits_seen += bool(wanted) and len(wanted) < len(raws)
    assert hits_seen > len(criteria) // 2  # the needles found something, not everything


_TEXT = st.text(
    alphabet=st.sampled_from(list('aAbß ẞéE\u0301ﬁǅ@.()"\\<>,:;\n\x00Ωω\u210chH日')), max_size=30
)


@given(name=st.sampled_from(searchtext.STORED_FIELDS), value=_TEXT, needle=_TEXT)
def test_a_stored_text_holds_a_needle_when_the_field_matches(
    name: str, value: str, needle: str
) -> None:
    folded = searchtext.fold(needle)
    stored = searchtext.stored_text(name, value)
    assert stored is not None
    if searchtext.storable_needle(folded):
        assert (folded in stored) == searchtext.field_matches(name, folded, value)
    else:
        assert "\n" in folded or "\x00" in folded
