"""Message bodies: content addressing, durability order, reference counting, deletion."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from courriel.store.base import NewMessage, NotFound, OverQuota, StoreError
from courriel.store.blobs import FileBlobStore
from courriel.store.sqlite import SqliteStore
from courriel.store.sqlite.bodies import DEFAULT_INLINE_MAX

MakeMessage = Callable[..., NewMessage]
BIG = DEFAULT_INLINE_MAX + 1  # a body this large is a file, not kept in the database


def files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()}


@pytest.fixture
async def blobs(tmp_path: Path) -> AsyncIterator[FileBlobStore]:
    b = FileBlobStore(tmp_path / "b")
    try:
        yield b
    finally:
        await b.close()


async def test_file_blob_store_roundtrip(blobs: FileBlobStore, tmp_path: Path) -> None:
    data = b"\x00hello\r\n" * 1000
    blob_id = await blobs.put(data)
    assert blob_id == hashlib.sha256(data).hexdigest() == blobs.blob_id(data)
    path = tmp_path / "b" / blob_id[:2] / blob_id[2:4] / blob_id
    assert path.read_bytes() == data
    assert await blobs.put(data) == blob_id  # stored once
    assert files(tmp_path / "b") == {blob_id}  # and no temporary file left behind
    assert await blobs.get(blob_id) == data
    await blobs.delete(blob_id)
    await blobs.delete(blob_id)  # deleting twice is fine
    with pytest.raises(NotFound):
        await blobs.get(blob_id)


async def test_file_blob_store_refuses_bad_ids(blobs: FileBlobStore) -> None:
    with pytest.raises(StoreError):
        await blobs.get("../../etc/passwd")


async def test_parallel_puts_of_same_content(blobs: FileBlobStore, tmp_path: Path) -> None:
    ids = await asyncio.gather(*(blobs.put(b"same body") for _ in range(20)))
    assert len(set(ids)) == 1 and files(tmp_path / "b") == {ids[0]}


async def test_identical_bodies_stored_once_and_freed_with_last_reference(
    sq: SqliteStore, tmp_path: Path, message: MakeMessage
) -> None:
    await sq.add_domain("example.org")
    a = await sq.add_user("a@example.org", "h")
    b = await sq.add_user("b@example.org", "h")
    ia, ib = await sq.get_mailbox(a.id, "INBOX"), await sq.get_mailbox(b.id, "INBOX")
    assert ia is not None and ib is not None
    body = message(1, size=BIG)
    await sq.append([(ia.id, body), (ib.id, body)])  # one delivery to two users
    await sq.append([(ia.id, NewMessage(body.raw, body.internal_date))])  # same bytes again
    blob_id = hashlib.sha256(body.raw).hexdigest()
    root = tmp_path / "blobs"
    assert files(root) == {blob_id}
    await sq.expunge(ia.id, [1, 2])
    assert files(root) == {blob_id}  # b still has it
    assert await sq.read_message(ib.id, 1) == body.raw
    await sq.remove_user(b.address)
    assert files(root) == set()


async def test_delete_mailbox_and_move_keep_counts_right(
    sq: SqliteStore, tmp_path: Path, message: MakeMessage
) -> None:
    await sq.add_domain("example.org")
    u = await sq.add_user("a@example.org", "h")
    inbox = await sq.get_mailbox(u.id, "INBOX")
    assert inbox is not None
    box = await sq.create_mailbox(u.id, "Box")
    await sq.append([(inbox.id, message(1, size=BIG)), (inbox.id, message(2, size=BIG))])
    await sq.move(inbox.id, [1], box.id)
    await sq.copy(inbox.id, [2], box.id)
    root = tmp_path / "blobs"
    assert len(files(root)) == 2
    await sq.delete_mailbox(u.id, "Box")
    assert files(root) == {hashlib.sha256(message(2, size=BIG).raw).hexdigest()}
    assert await sq.read_message(inbox.id, 2) == message(2, size=BIG).raw
    assert (await sq.quota_usage(u.id)).messages == 1


async def test_refused_append_leaves_no_file(
    sq: SqliteStore, tmp_path: Path, message: MakeMessage
) -> None:
    await sq.add_domain("example.org")
    u = await sq.add_user("a@example.org", "h", quota_bytes=10)
    inbox = await sq.get_mailbox(u.id, "INBOX")
    assert inbox is not None
    with pytest.raises(OverQuota):
        await sq.append([(inbox.id, message(1, size=BIG))])
    assert files(tmp_path / "blobs") == set()


async def test_body_shared_with_concurrent_expunge_survives(
    sq: SqliteStore, message: MakeMessage
) -> None:
    # The same body is delivered again while its previous copy is expunged: the file must
    # outlive the expunge whenever the new message commits (courriel.store.sqlite.bodies).
    await sq.add_domain("example.org")
    u = await sq.add_user("a@example.org", "h")
    inbox = await sq.get_mailbox(u.id, "INBOX")
    assert inbox is not None
    body = message(7, size=BIG)
    for _ in range(30):
        [old] = await sq.append([(inbox.id, body)])
        new, _gone = await asyncio.gather(
            sq.append([(inbox.id, body)]), sq.expunge(inbox.id, [old.uid])
        )
        assert await sq.read_message(inbox.id, new[0].uid) == body.raw
        await sq.expunge(inbox.id, [new[0].uid])
    assert await sq.list_messages(inbox.id) == []


async def test_mail_and_database_are_private(
    sq: SqliteStore, tmp_path: Path, message: MakeMessage
) -> None:
    await sq.add_domain("example.org")
    u = await sq.add_user("a@example.org", "h")
    inbox = await sq.get_mailbox(u.id, "INBOX")
    assert inbox is not None
    await sq.append([(inbox.id, message(1, size=BIG))])
    [body] = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert body.stat().st_mode & 0o077 == 0
    assert body.parent.stat().st_mode & 0o077 == 0
    assert (tmp_path / "courriel.db").stat().st_mode & 0o077 == 0
