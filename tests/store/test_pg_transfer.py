"""Moving an installation from SQLite to PostgreSQL: everything identical afterwards."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.store.base import FlagOp, NewMessage, Store, StoreError
from courriel.store.postgres import PostgresStore, open_postgres_url
from courriel.store.queue import (
    NewEntry,
    NewRecipient,
    QueuedMessage,
    RecipientState,
    RecipientUpdate,
    Report,
)
from courriel.store.sqlite import SqliteStore, open_sqlite
from courriel.store.transfer import (
    aiter_pages,
    check_export,
    export_pages,
    import_pages,
    read_export,
    write_export,
)

pytestmark = pytest.mark.postgres


def msg(n: int, flags: frozenset[str] = frozenset()) -> NewMessage:
    when = datetime(2024, 1, 1 + n % 28, 8, n % 60, tzinfo=UTC)
    raw = f"Subject: {n}\r\n\r\n".encode() + bytes(range(256)) * (n % 5)
    return NewMessage(raw, when, flags, f"meta-{n}".encode() + b"\x00\xff")


async def populate(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_domain("xn--bcher-kva.example")
    await store.set_catch_all("example.org", "alice@example.org")
    alice = await store.add_user("alice@example.org", "$argon2id$v=19$hash-a", quota_bytes=10**7)
    bob = await store.add_user("Bob@xn--bcher-kva.example", "$argon2id$v=19$hash-b")
    await store.add_alias("sales@example.org", "alice@example.org")
    await store.add_alias("sales@example.org", "bob@elsewhere.example")
    sent = await store.create_mailbox(alice.id, "Sent", special_use="\\Sent")
    gone = await store.create_mailbox(alice.id, "Old")
    await store.delete_mailbox(alice.id, "Old")  # its ids and UIDVALIDITY are spent
    assert gone.id
    work = await store.create_mailbox(alice.id, "Work/Été")
    await store.set_subscribed(alice.id, "Work/Été", True)
    await store.set_subscribed(alice.id, "Gone/Never", True)
    inbox = await store.get_mailbox(alice.id, "INBOX")
    bob_inbox = await store.get_mailbox(bob.id, "INBOX")
    assert inbox is not None and bob_inbox is not None
    await store.append(
        [(inbox.id, msg(n, frozenset({"\\Seen"} if n % 2 else ()))) for n in range(30)]
    )
    await store.append(
        [(bob_inbox.id, msg(3)), (sent.id, msg(40, frozenset({"$Label", "\\Draft"})))]
    )
    await store.store_flags(inbox.id, [1, 2, 3], FlagOp.ADD, frozenset({"\\Flagged", "Work"}))
    await store.expunge(inbox.id, [4, 5, 9])
    await store.copy(inbox.id, [1, 2, 3], work.id)
    await store.move(inbox.id, [10, 11], work.id)
    await store.put_sieve_script(alice.id, "main", 'require "fileinto"; fileinto "Work";')
    await store.put_sieve_script(alice.id, "spare", "keep;")
    await store.activate_sieve_script(alice.id, "main")
    await store.put_global_sieve_script("spam", "discard;")
    await store.set_tag_folders("alice@example.org", True)


async def snapshot(store: Store) -> dict[str, object]:
    """Everything a client or the server can observe, through the Store interface."""
    out: dict[str, object] = {
        "domains": await store.list_domains(),
        "users": await store.list_users(),
        "aliases": await store.list_aliases(),
        "global sieve": await store.global_sieve_script("spam"),
    }
    for user in await store.list_users():
        out[f"subs {user.id}"] = sorted(await store.subscriptions(user.id))
        out[f"quota {user.id}"] = await store.quota_usage(user.id)
        out[f"sieve {user.id}"] = await store.sieve_scripts(user.id)
        out[f"tags {user.id}"] = await store.tag_folders(user.id)
        for box in await store.list_mailboxes(user.id):
            infos = await store.list_messages(box.id)
            uids = [m.uid for m in infos]
            out[f"box {box.id}"] = (box, await store.mailbox_status(box.id), infos)
            out[f"meta {box.id}"] = await store.get_meta(box.id, uids)
            out[f"bodies {box.id}"] = [await store.read_message(box.id, u) for u in uids]
            out[f"expunged {box.id}"] = await store.expunged_since(box.id, 0)
    return out


async def check_goes_on(pg: PostgresStore, before: dict[str, object]) -> None:
    """New ids, UIDs and UIDVALIDITYs after an import never collide with imported ones."""
    alice = await pg.get_user("alice@example.org")
    assert alice is not None
    inbox = await pg.get_mailbox(alice.id, "INBOX")
    assert inbox is not None
    [done] = await pg.append([(inbox.id, msg(99))])
    assert done.uid == inbox.uidnext and done.modseq == inbox.highestmodseq + 1
    new_box = await pg.create_mailbox(alice.id, "New")
    old_boxes = [v[0] for k, v in before.items() if k.startswith("box ")]  # type: ignore[index]
    assert new_box.id > max(b.id for b in old_boxes)
    assert new_box.uidvalidity > max(b.uidvalidity for b in old_boxes)
    carol = await pg.add_user("carol@example.org", "h")
    assert carol.id > alice.id


async def test_sqlite_export_file_into_postgres(tmp_path: Path, pg_url: str) -> None:
    sq = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        await populate(sq)
        before = await snapshot(sq)
        buf = io.StringIO()
        written = await write_export(sq, buf)
    finally:
        await sq.close()
    assert written.rows["messages"] == 30 - 3 - 2 + 2 + 3 + 2
    buf.seek(0)
    assert check_export(buf).rows == written.rows
    buf.seek(0)
    pg = await open_postgres_url(pg_url, pool_size=2)
    try:
        loaded = await import_pages(pg, aiter_pages(read_export(buf)), postgres=True)
        assert loaded.rows == written.rows
        assert await snapshot(pg) == before
        await check_goes_on(pg, before)
    finally:
        await pg.close()


async def test_postgres_copy_back_to_sqlite(tmp_path: Path, pg_url: str) -> None:
    pg = await open_postgres_url(pg_url, pool_size=2)
    sq: SqliteStore = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        await populate(pg)
        before = await snapshot(pg)
        await import_pages(sq, export_pages(pg), postgres=False)
        assert await snapshot(sq) == before
        with pytest.raises(StoreError, match="not empty"):
            await import_pages(sq, export_pages(pg), postgres=False)
    finally:
        await sq.close()
        await pg.close()


async def test_truncated_or_foreign_files_refused(tmp_path: Path) -> None:
    sq = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        await populate(sq)
        buf = io.StringIO()
        await write_export(sq, buf)
    finally:
        await sq.close()
    lines = buf.getvalue().splitlines(keepends=True)
    with pytest.raises(StoreError, match="cut short"):
        check_export(io.StringIO("".join(lines[:-1])))
    with pytest.raises(StoreError, match="not a courriel export"):
        check_export(io.StringIO('{"format": "other"}\n'))


T0 = 1_780_000_000.0
QUEUED = b"From: alice@example.org\r\nSubject: away\r\n\r\n" + bytes(range(256)) + b"\r\n"


def queue_entry(entry_id: str, *rcpts: str) -> NewEntry:
    return NewEntry(
        id=entry_id,
        sender="alice@example.org",
        recipients=tuple(
            NewRecipient(
                r, r.rpartition("@")[2], ("DELAY", "FAILURE") if i else None, f"rfc822;{r}"
            )
            for i, r in enumerate(rcpts)
        ),
        message=QUEUED,
        ret="HDRS",
        envid="env-7",
        smtputf8=True,
        body_type="8BITMIME",
        authenticated_as="alice@example.org",
    )


async def fill_queue(store: Store) -> None:
    """An entry mid-retry (one recipient delivered, one deferred, a warning owed), one held,
    and one leased by a worker that was running when the copy was taken."""
    await store.queue.enqueue(queue_entry("Q1", "bob@example.net", "carol@example.com"), T0)
    await store.queue.enqueue(queue_entry("Q2", "dave@example.net"), T0 + 1)
    await store.queue.enqueue(queue_entry("Q3", "erin@example.net"), T0 + 2)
    [leased] = await store.queue.lease_due("node-a", T0 + 5, 300, 1)
    assert leased.id == "Q1"
    await store.queue.record(
        "Q1",
        [
            RecipientUpdate(
                0, RecipientState.DELIVERED, 0, 250, "2.0.0", "ok", "mx [192.0.2.1]", None
            ),
            RecipientUpdate(
                1, RecipientState.QUEUED, T0 + 305, 451, "4.7.1", "later", "mx [192.0.2.2]", None
            ),
        ],
        T0 + 5,
    )
    await store.queue.warn_delayed("Q1", [1])
    await store.queue.hold("Q2", True, T0 + 6)
    [taken] = await store.queue.lease_due("node-a", T0 + 7, 300, 1)
    assert taken.id == "Q3"


async def queue_state(store: Store) -> list[QueuedMessage]:
    """Every entry with its message, leases left out (they stay behind with the old store)."""
    out = []
    for e in await store.queue.list_entries():
        full = await store.queue.get(e.id)
        out.append(dataclasses.replace(full, lease_owner=None, lease_expires=0.0))
    return out


async def test_a_queued_message_survives_a_copy_to_postgres_and_back(
    tmp_path: Path, pg_url: str
) -> None:
    first = await open_sqlite(tmp_path / "a" / "courriel.db", tmp_path / "a" / "blobs")
    pg = await open_postgres_url(pg_url, pool_size=2)
    back: SqliteStore = await open_sqlite(tmp_path / "b" / "courriel.db", tmp_path / "b" / "blobs")
    try:
        await fill_queue(first)
        before = await queue_state(first)
        copied = await import_pages(pg, export_pages(first), postgres=True)
        assert copied.rows["queue_messages"] == 3 and copied.rows["queue_recipients"] == 4
        assert await queue_state(pg) == before
        await import_pages(back, export_pages(pg), postgres=False)
        after = await queue_state(back)
    finally:
        await first.close()
        await pg.close()
    try:
        assert after == before
        q1 = after[0]
        assert q1.warned and q1.recipients[1].report is Report.DELAYED
        assert [r.state for r in q1.recipients] == [RecipientState.DELIVERED, RecipientState.QUEUED]
        assert after[1].held and after[0].message == QUEUED
        # The lease of the worker that ran against the first store did not come along:
        # the entries are due for whoever delivers from the new store.
        due = await back.queue.lease_due("node-b", T0 + 400, 300, 10)
        assert sorted(e.id for e in due) == ["Q1", "Q3"]
    finally:
        await back.close()
