"""Message bodies of the SQLite store: small ones in the database, the rest as files, shared safely.

Theory of operation
-------------------
*Where a body lives.* A body of at most ``inline_max`` bytes (64 KiB by default) is stored in its
``blobs`` row (column ``data``), written by the append's own transaction: it rides the group
commit, so a message costs no fsync of its own (a file costs two: the file and its directory).
Larger bodies are files (``FileBlobStore``), written and fsynced before the transaction that
references them. ``SqliteBlobs`` reads both kinds, so callers of the ``BlobStore`` interface (the
export) never need to know; ``read_message`` gets an inline body with the row, in one read.
Bodies stored before inline bodies existed are files, and stay readable as such.

*Deleting a shared file across processes.* Files are shared by content, so the last reference to
a body can go away in one process while another has just found the file present (``put``) and
is about to commit a message that points at it. Two rules, both under SQLite's write lock, which
every process takes for every write:

1. the deleter (``reap``, run through ``SqliteDriver.locked``) rereads, holding the lock, that no
   ``blobs`` row references the body, and unlinks the file before it lets go of the lock;
2. the appender's transaction, holding the lock, checks that each body file that gets its
   *first* reference (``Done.new_files``) exists (``check_files``); a missing one undoes that
   append (``BodyMissing``) and the store retries with that body kept in its database row,
   whatever its size: a file written again could lose the same race again while other
   processes churn that body, a row cannot, so the retry always goes through.

Either the deleter's transaction comes first -- then the file is gone when the appender looks,
and the body goes into the database instead -- or the appender's does, and then the deleter sees
the new reference and leaves the file alone. A body that already had a reference cannot be
deleted meanwhile (rule 1), so it needs no check. This replaces an in-process gate that could
not see other processes.

*A file that a row makes needless.* Once a retry has kept a body in its row, an append elsewhere
that wrote the same body as a file references the row (the row's bytes win; a row never changes
where its body lives), so that file is needed by nothing: the append's transaction reports it
(``reference_blobs``, "stranded") and it is reaped after the commit. Rule 1 therefore counts only
rows without bytes (``data IS NULL``) as references to a file.

*Orphans.* A crash between writing a file and its commit, or between a commit and the deletion
that follows, leaves a file no row references. ``sweep`` finds them (files older than an hour,
so appends in flight are left alone; rule 2 would catch them anyway) and deletes them under
rule 1, a few hundred per lock; interrupted temporary files go too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from courriel.store.blobs import BodyMissing, FileBlobStore
from courriel.store.sql import Done
from courriel.store.sql.messages import inline_body

if TYPE_CHECKING:
    from courriel.store.sqlite.driver import SqliteDriver

_log = logging.getLogger(__name__)

DEFAULT_INLINE_MAX = 64 * 1024
SWEEP_MIN_AGE = 3600.0  # seconds: a file younger than this may belong to an append in flight
_SWEEP_CHUNK = 500  # files checked per hold of the write lock


class SqliteBlobs:
    """The ``BlobStore`` of the SQLite store: files, plus reads of bodies kept in the database."""

    def __init__(self, files: FileBlobStore, driver: SqliteDriver) -> None:
        self.files = files
        self._driver = driver

    def blob_id(self, data: bytes) -> str:
        return self.files.blob_id(data)

    async def put(self, data: bytes, blob_id: str | None = None) -> str:
        return await self.files.put(data, blob_id)

    async def get(self, blob_id: str) -> bytes:
        data = await self._driver.read(inline_body(blob_id))
        if data is not None:
            return data
        return await self.files.get(blob_id)

    async def get_apart(self, blob_id: str) -> bytes:
        return await self.files.get(blob_id)

    async def delete(self, blob_id: str) -> None:
        await self.files.delete(blob_id)

    async def close(self) -> None:
        await self.files.close()


def check_files(files: FileBlobStore) -> Callable[[Any], None]:
    """Rule 2 of the module docstring, for ``SqliteDriver(verify=...)``."""

    def verify(value: Any) -> None:
        if isinstance(value, Done) and value.new_files:
            missing = [b for b in value.new_files if not files.path(b).exists()]
            if missing:
                raise BodyMissing(missing)

    return verify


def reap(files: FileBlobStore, blob_ids: Sequence[str]) -> Callable[[sqlite3.Connection], int]:
    """Rule 1: unlinks those of ``blob_ids`` no row references; run it under the write lock."""

    def under_lock(conn: sqlite3.Connection) -> int:
        wanted = list(dict.fromkeys(blob_ids))
        marks = ", ".join("?" * len(wanted))
        live = {
            r[0]
            for r in conn.execute(
                f"SELECT id FROM blobs WHERE id IN ({marks}) AND data IS NULL",  # noqa: S608
                wanted,
            )
        }
        gone = 0
        for blob_id in wanted:
            if blob_id not in live:
                files.path(blob_id).unlink(missing_ok=True)
                gone += 1
        return gone

    return under_lock


async def reap_files(driver: SqliteDriver, files: FileBlobStore, blob_ids: Sequence[str]) -> int:
    """Deletes the freed body files that are still unreferenced; returns how many went."""
    gone = 0
    for i in range(0, len(blob_ids), _SWEEP_CHUNK):
        gone += await driver.locked(reap(files, blob_ids[i : i + _SWEEP_CHUNK]))
    return gone


async def sweep(driver: SqliteDriver, files: FileBlobStore, min_age: float = SWEEP_MIN_AGE) -> int:
    """Deletes body files no row references, older than ``min_age`` seconds; returns how many."""
    candidates = await asyncio.to_thread(_old_files, files.root, time.time() - min_age)
    return await reap_files(driver, files, candidates)


def _old_files(root: Path, before: float) -> list[str]:
    """Ids of body files last written before ``before``; removes old temporary files."""
    out = []
    for entry in _walk(root):
        try:
            if entry.stat().st_mtime >= before:
                continue
        except FileNotFoundError:
            continue
        if entry.name.startswith("."):  # a put interrupted by a crash
            Path(entry.path).unlink(missing_ok=True)
        elif len(entry.name) == 64:
            out.append(entry.name)
    return out


def _walk(root: Path) -> Iterator[os.DirEntry[str]]:
    """The files of ``<root>/ab/cd/``."""
    for first in _dirs(root):
        for second in _dirs(Path(first.path)):
            try:
                with os.scandir(second.path) as it:
                    yield from (e for e in it if e.is_file(follow_symlinks=False))
            except FileNotFoundError:
                continue


def _dirs(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return [e for e in it if e.is_dir(follow_symlinks=False) and len(e.name) == 2]
    except FileNotFoundError:
        return []
