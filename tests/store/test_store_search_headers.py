"""Contract: the search texts of the fields SEARCH compares most (migration 0022) on every
backend: made at append, kept by COPY and MOVE, gone with their message, made from the stored
parse for older messages, and matched exactly as ``searchtext.field_matches`` matches; and a
message stored unparsed, parsed on first need (its parse kept, searched and sorted alike)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from courriel.mail import searchtext
from courriel.mail.message import parse, search_fields_of
from courriel.store.base import FlagOp, Mailbox, NewMessage, Store, User
from courriel.store.sql.core import Done, Query, Script
from courriel.store.sql.store import SqlStore

WHEN = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)

RAWS = [
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: Budget 2026\r\n\r\nx\r\n",
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: =?utf-8?b?w4l0w6kgYnVkZ2V0?=\r\n"
    b"Cc: (Real Name) user @ example.org\r\n\r\nx\r\n",
    b"Subject: 100% off_sale \\o/\r\nBcc: hidden@example.org\r\n\r\nx\r\n",
    "Subject: \u210cello\r\n\r\nx\r\n".encode(),  # folds to "Hello": "h" must not match
    b"To: undisclosed-recipients:;\r\n\r\nno subject\r\n",
]


def _message(raw: bytes) -> NewMessage:
    return NewMessage(raw, WHEN, meta=parse(raw).to_bytes())


def _expected(raw: bytes, name: str, needle: str) -> bool:
    value = search_fields_of(parse(raw).to_bytes()).text_headers.get(name)
    if value is None:
        return False
    return searchtext.field_matches(name, searchtext.fold(needle), value)


KEYS = [
    ("subject", "budget"),
    ("subject", "été"),
    ("subject", "ÉTÉ"),
    ("subject", "%"),
    ("subject", "_s"),
    ("subject", "f_"),
    ("subject", "\\o"),
    ("subject", "h"),
    ("subject", "hello"),
    ("subject", ""),
    ("from", "jürgen"),
    ("from", "ANN <ann@"),
    ("cc", "user@example.org"),
    ("cc", "real name"),
    ("to", "undisclosed"),
    ("to", ""),
    ("bcc", "hidden"),
]


def _forget(mailbox_id: int) -> Script[Done[None]]:
    """What messages stored before migration 0022 look like."""
    yield Query("DELETE FROM message_search WHERE mailbox_id = ?", (mailbox_id,), False)
    return Done(None)


def _count(mailbox_id: int) -> Script[int]:
    rows = yield Query("SELECT count(*) FROM message_search WHERE mailbox_id = ?", (mailbox_id,))
    return int(rows[0][0])


async def _answers(store: Store, mailbox_id: int) -> list[set[int]]:
    keys = [(n, searchtext.fold(v)) for n, v in KEYS]
    found = await store.search_headers(mailbox_id, keys)
    assert found.unmade == frozenset()
    return found.hits


async def test_hits_are_what_the_parse_compares(store: Store, inbox: Mailbox) -> None:
    await store.append([(inbox.id, _message(raw)) for raw in RAWS])
    hits = await _answers(store, inbox.id)
    for (name, value), found in zip(KEYS, hits, strict=True):
        wanted = {i for i, raw in enumerate(RAWS, 1) if _expected(raw, name, value)}
        assert found == wanted, (name, value)
    assert hits[0] == {1, 2}  # and a few by hand: the encoded subject reads "Été budget"
    assert hits[7] == set()  # U+210C then "ello" folds to "Hello": no "h"
    assert hits[9] == {1, 2, 3, 4}  # SUBJECT "": every message with the field


async def test_rows_follow_copy_move_and_expunge(store: Store, user: User, inbox: Mailbox) -> None:
    assert isinstance(store, SqlStore)
    await store.append([(inbox.id, _message(raw)) for raw in RAWS])
    other = await store.create_mailbox(user.id, "Other")
    await store.copy(inbox.id, [1], other.id)
    await store.move(inbox.id, [2], other.id)
    assert await store._read(_count(other.id)) == 2  # made by the copy, not afterwards
    key = [("subject", "budget")]
    assert (await store.search_headers(other.id, key)).hits == [{1, 2}]
    assert (await store.search_headers(inbox.id, key)).hits == [{1}]
    await store.store_flags(inbox.id, [1], FlagOp.ADD, frozenset({"\\Deleted"}))
    await store.expunge_deleted(inbox.id, None)
    assert await store._read(_count(inbox.id)) == len(RAWS) - 2
    await store.delete_mailbox(user.id, "Other")
    assert await store._read(_count(other.id)) == 0


async def test_missing_rows_are_made_from_the_parse(store: Store, inbox: Mailbox) -> None:
    assert isinstance(store, SqlStore)
    await store.append([(inbox.id, _message(raw)) for raw in RAWS])
    before = await _answers(store, inbox.id)
    await store._write(_forget(inbox.id))
    assert await store._read(_count(inbox.id)) == 0
    assert await _answers(store, inbox.id) == before
    assert await store._read(_count(inbox.id)) == len(RAWS)  # kept: made once


async def test_an_unreadable_parse_is_left_to_the_caller(store: Store, inbox: Mailbox) -> None:
    await store.append([(inbox.id, NewMessage(b"Subject: x\r\n\r\n", WHEN, meta=b"junk"))])
    await store.append([(inbox.id, _message(RAWS[0]))])
    found = await store.search_headers(inbox.id, [("subject", "budget")])
    assert found.hits == [{2}]
    assert found.unmade == frozenset({1})


@pytest.mark.parametrize("needle", ["budget", "été"])
async def test_a_mailbox_with_no_messages_has_no_hits(
    store: Store, inbox: Mailbox, needle: str
) -> None:
    found = await store.search_headers(inbox.id, [("subject", needle)])
    assert found.hits == [set()] and found.unmade == frozenset()


# --- parsed on first need (courriel.store.base) ---------------------------------------------


def _stored_meta(mailbox_id: int) -> Script[dict[int, bytes]]:
    rows = yield Query("SELECT uid, meta FROM messages WHERE mailbox_id = ?", (mailbox_id,))
    return {r[0]: bytes(r[1]) for r in rows}


async def test_a_message_stored_unparsed_is_parsed_on_first_need_and_kept(
    store: Store, inbox: Mailbox
) -> None:
    assert isinstance(store, SqlStore)
    await store.append([(inbox.id, NewMessage(raw, WHEN)) for raw in RAWS])
    assert set((await store._read(_stored_meta(inbox.id))).values()) == {b""}
    uids = list(range(1, len(RAWS) + 1))
    wanted = {uid: parse(raw).to_bytes() for uid, raw in zip(uids, RAWS, strict=True)}
    assert await store.get_meta(inbox.id, uids[:2]) == {1: wanted[1], 2: wanted[2]}
    kept = await store._read(_stored_meta(inbox.id))
    assert kept == {1: wanted[1], 2: wanted[2]} | dict.fromkeys(uids[2:], b"")
    assert await store.get_meta(inbox.id, uids) == wanted
    assert await store._read(_stored_meta(inbox.id)) == wanted


async def test_search_and_sort_of_unparsed_messages_match_parsed_ones(
    store: Store, user: User, inbox: Mailbox
) -> None:
    await store.append([(inbox.id, _message(raw)) for raw in RAWS])
    lazy = await store.create_mailbox(user.id, "Lazy")
    await store.append([(lazy.id, NewMessage(raw, WHEN)) for raw in RAWS])
    assert await _answers(store, lazy.id) == await _answers(store, inbox.id)
    assert await store.sort_keys(lazy.id) == await store.sort_keys(inbox.id)
    assert all((await store.sort_keys(lazy.id)).values())  # made from the parse, not ""


async def test_an_unparsed_message_expunged_before_its_parse_is_left_out(
    store: Store, inbox: Mailbox
) -> None:
    await store.append([(inbox.id, NewMessage(raw, WHEN)) for raw in RAWS[:2]])
    await store.expunge(inbox.id, [1])
    assert await store.get_meta(inbox.id, [1, 2]) == {2: parse(RAWS[1]).to_bytes()}
