"""SQLite bodies: small ones in the database, files for the rest, orphans swept, old data kept."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from courriel.store.base import Mailbox, NewMessage
from courriel.store.blobs import FileBlobStore
from courriel.store.sqlite import SqliteStore, open_sqlite
from courriel.store.sqlite.bodies import DEFAULT_INLINE_MAX

MakeMessage = Callable[..., NewMessage]


def files(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()}


async def inbox_of(store: SqliteStore) -> Mailbox:
    await store.add_domain("example.org")
    user = await store.add_user("a@example.org", "h")
    box = await store.get_mailbox(user.id, "INBOX")
    assert box is not None
    return box


def inline_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM blobs WHERE data IS NOT NULL").fetchone()[0])
    finally:
        conn.close()


async def test_small_bodies_live_in_the_database(
    sq: SqliteStore, tmp_path: Path, message: MakeMessage
) -> None:
    inbox = await inbox_of(sq)
    small, edge = message(1), message(2, size=DEFAULT_INLINE_MAX)
    big = message(3, size=DEFAULT_INLINE_MAX + 5_000)
    done = await sq.append([(inbox.id, small), (inbox.id, edge), (inbox.id, big)])
    assert files(tmp_path / "blobs") == {sq.blobs.blob_id(big.raw)}  # only the large one
    assert inline_rows(sq.path) == 2
    for d, m in zip(done, (small, edge, big), strict=True):
        assert await sq.read_message(inbox.id, d.uid) == m.raw
        # The BlobStore interface reads both kinds too (the export uses it).
        assert await sq.blobs.get(sq.blobs.blob_id(m.raw)) == m.raw
    await sq.expunge(inbox.id, [d.uid for d in done])
    assert files(tmp_path / "blobs") == set()
    assert inline_rows(sq.path) == 0


async def test_a_small_body_costs_no_fsync_of_its_own(
    sq: SqliteStore, tmp_path: Path, message: MakeMessage
) -> None:
    inbox = await inbox_of(sq)
    commits = sq.commits
    await sq.append([(inbox.id, message(1))])
    assert sq.commits == commits + 1  # the database's commit, and no file was written
    assert not any(p.is_dir() for p in (tmp_path / "blobs").iterdir())


async def test_a_body_in_a_file_is_read_with_one_database_read(
    sq: SqliteStore, message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await inbox_of(sq)
    big = message(1, size=DEFAULT_INLINE_MAX + 5_000)
    small = message(2)
    done = await sq.append([(inbox.id, big), (inbox.id, small)])
    reads: list[object] = []
    read = sq.driver.read

    async def counted(script: Any) -> Any:
        reads.append(script)
        return await read(script)

    monkeypatch.setattr(sq.driver, "read", counted)
    assert await sq.read_message(inbox.id, done[0].uid) == big.raw
    assert len(reads) == 1  # the row says "a file": the database is not asked again
    both = await sq.read_messages(inbox.id, [d.uid for d in done])
    assert both == {done[0].uid: big.raw, done[1].uid: small.raw}
    assert len(reads) == 2


async def test_bodies_stored_as_files_before_stay_readable(
    tmp_path: Path, message: MakeMessage
) -> None:
    """Data written with every body in a file (as before inline bodies) keeps working."""
    old = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs", inline_max=0)
    inbox = await inbox_of(old)
    [first] = await old.append([(inbox.id, message(1))])
    await old.close()
    assert len(files(tmp_path / "blobs")) == 1
    new = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        assert await new.read_message(inbox.id, first.uid) == message(1).raw
        [again] = await new.append([(inbox.id, message(1))])  # same content: shares the file
        assert await new.read_message(inbox.id, again.uid) == message(1).raw
        assert inline_rows(new.path) == 0
        await new.expunge(inbox.id, [first.uid, again.uid])
        assert files(tmp_path / "blobs") == set()
    finally:
        await new.close()


async def test_a_file_written_for_a_body_kept_in_its_row_is_deleted(
    tmp_path: Path, message: MakeMessage
) -> None:
    """A body another process keeps in the database (as its retry does after losing a file to a
    deleter, or a store with a larger ``inline_max``): an append that wrote it as a file is
    referenced through the row, and its file, needed by nothing, goes at once."""
    roomy = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs", inline_max=1 << 20)
    files_only = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs", inline_max=0)
    try:
        inbox = await inbox_of(roomy)
        big = message(1, size=DEFAULT_INLINE_MAX + 5_000)
        [first] = await roomy.append([(inbox.id, big)])
        assert files(tmp_path / "blobs") == set() and inline_rows(roomy.path) == 1
        [second] = await files_only.append([(inbox.id, big)])
        assert files(tmp_path / "blobs") == set()  # written, then found not needed
        assert inline_rows(roomy.path) == 1
        for d in (first, second):
            assert await files_only.read_message(inbox.id, d.uid) == big.raw
        # A stranded file left by an older version is swept like any orphan.
        stray = await files_only.blobs.put(big.raw)
        hour_ago = time.time() - 7200
        os.utime(files_only.blobs.files.path(stray), (hour_ago, hour_ago))
        assert await files_only.sweep_bodies() == 1
        assert files(tmp_path / "blobs") == set()
        assert await roomy.read_message(inbox.id, second.uid) == big.raw
    finally:
        await files_only.close()
        await roomy.close()


async def test_sweep_deletes_orphaned_files_only(
    sq: SqliteStore, tmp_path: Path, message: MakeMessage
) -> None:
    inbox = await inbox_of(sq)
    kept = message(1, size=DEFAULT_INLINE_MAX + 5_000)
    await sq.append([(inbox.id, kept)])
    # What a crash leaves: a body written but never committed, and a half-written temporary.
    orphans = FileBlobStore(tmp_path / "blobs")
    orphan = await orphans.put(b"never committed" * 10_000)
    await orphans.close()
    tmp = (tmp_path / "blobs" / orphan[:2] / orphan[2:4]) / f".{orphan}.0.tmp"
    tmp.write_bytes(b"half")
    assert await sq.sweep_bodies() == 0  # too young: may belong to an append in flight
    hour_ago = time.time() - 7200
    for p in (tmp_path / "blobs").rglob("*"):
        if p.is_file():
            os.utime(p, (hour_ago, hour_ago))
    assert await sq.sweep_bodies() == 1
    assert files(tmp_path / "blobs") == {sq.blobs.blob_id(kept.raw)}
    assert await sq.read_message(inbox.id, 1) == kept.raw


async def test_one_process_sweeps_in_the_background_when_due(tmp_path: Path) -> None:
    a = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    b = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        old = time.time() - 7200
        first = await a.blobs.put(b"orphan one" * 10_000)
        os.utime(a.files.path(first), (old, old))
        a.sweep_in_background()
        async with asyncio.timeout(10):
            while a.files.path(first).exists():  # noqa: ASYNC110 - files: nothing to await
                await asyncio.sleep(0.01)
        second = await a.blobs.put(b"orphan two" * 10_000)
        os.utime(a.files.path(second), (old, old))
        b.sweep_in_background()  # a swept a moment ago: not due yet
        await asyncio.sleep(0.2)
        assert a.files.path(second).exists()
    finally:
        await a.close()
        await b.close()
