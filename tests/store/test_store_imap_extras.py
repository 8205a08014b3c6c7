"""Contract: what the newer IMAP extensions keep per message (migration 0017) on every
backend: SORT and THREAD keys made at append, kept by COPY and MOVE and made from the stored
parse for older messages; SAVEDATE and PREVIEW (``message_extras``); REPLACE in one call."""

from __future__ import annotations

from datetime import UTC, datetime

from courriel.mail import sortkeys
from courriel.mail.message import parse
from courriel.store.base import Mailbox, NewMessage, Store, User
from courriel.store.sql.core import Done, Query, Script
from courriel.store.sql.store import SqlStore

WHEN = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)


def _message(n: int) -> NewMessage:
    raw = (
        f"From: Sender {n} <s{n}@example.org>\r\nSubject: Re: topic {n}\r\n"
        f"Message-ID: <{n}@example.org>\r\nReferences: <{n - 1}@example.org>\r\n\r\nbody\r\n"
    ).encode()
    return NewMessage(raw, WHEN, meta=parse(raw).to_bytes())


def _forget_keys(mailbox_id: int) -> Script[Done[None]]:
    """What a message stored before migration 0017 looks like."""
    yield Query("UPDATE messages SET sort_keys = NULL WHERE mailbox_id = ?", (mailbox_id,), False)
    return Done(None)


async def test_keys_are_made_at_append_and_kept_by_copy_and_move(
    store: Store, user: User, inbox: Mailbox
) -> None:
    await store.append([(inbox.id, _message(n)) for n in (1, 2)])
    keys = await store.sort_keys(inbox.id)
    assert sorted(keys) == [1, 2]
    first = sortkeys.decode(keys[1])
    assert first is not None
    assert (first.subject, first.reply, first.sort_from) == ("TOPIC 1", True, "S1")
    assert (first.message_id, first.references) == ("1@example.org", ("0@example.org",))
    other = await store.create_mailbox(user.id, "Other")
    await store.copy(inbox.id, [2], other.id)
    await store.move(inbox.id, [1], other.id)
    moved = await store.sort_keys(other.id)
    assert moved == {1: keys[2], 2: keys[1]}
    assert await store.sort_keys(inbox.id) == {2: keys[2]}  # copied, not moved


async def test_a_message_without_a_parse_has_empty_keys(store: Store, inbox: Mailbox) -> None:
    await store.append([(inbox.id, NewMessage(b"Subject: x\r\n\r\n", WHEN, meta=b"junk"))])
    assert await store.sort_keys(inbox.id) == {1: ""}


async def test_missing_keys_are_made_from_the_parse_once(store: Store, inbox: Mailbox) -> None:
    await store.append([(inbox.id, _message(n)) for n in range(1, 4)])
    made = await store.sort_keys(inbox.id)
    assert isinstance(store, SqlStore)
    await store._write(_forget_keys(inbox.id))
    assert await store.sort_keys(inbox.id) == made  # made again from the stored parse
    rows = await store._read(_stored_keys(inbox.id))
    assert rows == sorted(made.items())  # and kept: the next SORT reads them


def _stored_keys(mailbox_id: int) -> Script[list[tuple[int, str | None]]]:
    rows = yield Query(
        "SELECT uid, sort_keys FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
    )
    return [(r[0], r[1]) for r in rows]


async def test_extras_savedate_and_previews(store: Store, user: User, inbox: Mailbox) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    await store.append([(inbox.id, _message(n)) for n in (1, 2)])
    extras = await store.message_extras(inbox.id, [1, 2, 3])
    assert sorted(extras) == [1, 2]  # UID 3 does not exist
    first = extras[1]
    assert first.savedate is not None and first.savedate >= before  # RFC 8514: when stored
    assert first.savedate != WHEN  # not the internal date
    assert first.preview is None and first.sort_keys == (await store.sort_keys(inbox.id))[1]
    assert extras[2].blob_id != first.blob_id
    await store.set_previews(inbox.id, {1: "hello \u00e9t\u00e9"})
    other = await store.create_mailbox(user.id, "Other")
    copied = await store.copy(inbox.id, [1], other.id)
    again = (await store.message_extras(other.id, [copied.pairs[0][1]]))[copied.pairs[0][1]]
    assert again.blob_id == first.blob_id  # the same body: the same EMAILID
    assert again.preview == "hello \u00e9t\u00e9"  # the preview travels with the copy
    assert again.savedate is not None and again.savedate >= first.savedate


async def test_replace_appends_and_expunges_in_one_call(
    store: Store, user: User, inbox: Mailbox
) -> None:
    await store.append([(inbox.id, _message(1))])
    drafts = await store.create_mailbox(user.id, "Drafts2")
    appended, gone = await store.replace(inbox.id, 1, drafts.id, _message(2))  # RFC 8508
    assert [e.uid for e in gone] == [1]
    assert await store.list_messages(inbox.id) == []
    [info] = await store.list_messages(drafts.id)
    assert (appended.mailbox_id, appended.uid) == (drafts.id, info.uid)
    assert await store.expunged_since(inbox.id, 0) == gone
    again, none = await store.replace(inbox.id, 1, drafts.id, _message(3))  # already gone
    assert none == [] and again.uid == appended.uid + 1
