"""Message bodies, stored once per distinct content, written durably before any row points at them.

Theory of operation
-------------------
A ``BlobStore`` keeps immutable byte strings under an id derived from their content. The store
writes a body with ``put`` *before* it submits the transaction that references it, so a committed
message row always points at a durable body. Rows count their references in the ``blobs`` table;
when a commit removes the last one, the store deletes it after that commit (the SQLite store
under its write lock, and small bodies live in the database: ``courriel.store.sqlite.bodies``).

``FileBlobStore`` keeps one file per SHA-256 under ``<root>/ab/cd/<hex>``. ``put`` writes a
temporary file in the target directory, fsyncs it, renames it into place and fsyncs the directory
(and any directory it had to create). It runs on the store's own pool of threads (not the loop's
default executor, which password hashing may keep busy), so many deliveries fsync in parallel:
disks complete parallel fsyncs many times faster than the same fsyncs one after the other.

``get`` first tries to read the file on the event loop with ``RWF_NOWAIT`` (Linux): the kernel
then copies the bytes only if they are all in the page cache and answers "would block" instead
of going to the disk. A recently delivered or read message is served without the hop to a thread
and back (tens of microseconds, more than the copy); a cold one, or one larger than
``LOOP_READ_MAX``, is read in a thread as before.

Crash behaviour: a crash between ``put`` and the commit, or between a commit and the ``delete``
that follows it, leaves a file no row references. Such a file is harmless (it is never read) and
is rewritten in place if the same content arrives again. A crash can never leave a row without its
file, because the file is durable before the row is written.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

from courriel.store.base import NotFound, StoreError, Unavailable

T = TypeVar("T")
LOOP_READ_MAX = 1024 * 1024  # a cached read this size costs the loop well under a millisecond
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
_HEX_ID = re.compile(r"[0-9a-f]{64}")
# Parallel fsyncs: the disk gets faster per fsync up to a few dozen in flight.
DEFAULT_THREADS = 32


class BodyMissing(Unavailable):
    """An append's transaction found that bodies it references are gone (deleted since ``put``).

    Nothing was written; the store retries with those bodies kept in the database.
    """

    def __init__(self, blob_ids: Sequence[str]) -> None:
        super().__init__(f"message bodies vanished before their commit: {', '.join(blob_ids)}")
        self.blob_ids = tuple(blob_ids)


class BlobStore(Protocol):
    def blob_id(self, data: bytes) -> str:
        """The id ``put(data)`` will return: a pure function of the content."""

    async def put(self, data: bytes, blob_id: str | None = None) -> str:
        """Stores ``data`` durably (once per content) and returns its id.

        ``blob_id``, when the caller has it already, is ``blob_id(data)``: hashing once is enough.
        """

    async def get(self, blob_id: str) -> bytes:
        """The bytes exactly as stored; raises ``NotFound`` when there are none."""

    async def get_apart(self, blob_id: str) -> bytes:
        """``get`` of a blob whose row was read and holds no bytes (a body too large to be
        kept in the database): no need to look there again."""

    async def delete(self, blob_id: str) -> None:
        """Forgets the blob; deleting a missing blob is not an error."""

    async def close(self) -> None:
        """Waits for work in progress and frees resources; the store calls it last."""


class FileBlobStore:
    """Content-addressed files; see the module docstring."""

    def __init__(self, root: Path, *, threads: int = DEFAULT_THREADS) -> None:
        self._root = root
        self._synced_dirs: set[Path] = set()  # directories known to exist durably
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="courriel-blobs")

    @property
    def root(self) -> Path:
        return self._root

    def blob_id(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def path(self, blob_id: str) -> Path:
        if not _HEX_ID.fullmatch(blob_id):  # ids come from the database; never trust a path
            raise StoreError(f"bad blob id {blob_id!r}")
        return self._root / blob_id[:2] / blob_id[2:4] / blob_id

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def put(self, data: bytes, blob_id: str | None = None) -> str:
        return await self._run(self._put, data, blob_id)

    async def get(self, blob_id: str) -> bytes:
        path = self.path(blob_id)
        try:
            cached = _read_cached(path)
            if cached is not None:
                return cached
            return await self._run(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(f"no blob {blob_id}") from None

    async def get_apart(self, blob_id: str) -> bytes:
        return await self.get(blob_id)  # every blob here is a file

    async def delete(self, blob_id: str) -> None:
        # No directory fsync: a delete lost in a crash only leaves a harmless unreferenced file.
        await self._run(functools.partial(self.path(blob_id).unlink, missing_ok=True))

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, True)

    def _put(self, data: bytes, blob_id: str | None) -> str:
        blob_id = blob_id or self.blob_id(data)
        path = self.path(blob_id)
        self._ensure_dir(path.parent)
        if path.exists():
            # Another put of the same content may have renamed the file without having fsynced
            # the directory yet; this put must not report durable before that has happened.
            _fsync_dir(path.parent)
            return blob_id
        tmp = path.parent / f".{blob_id}.{uuid.uuid4().hex}.tmp"
        try:
            # Mail is private: owner-only, whatever the umask.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return blob_id

    def _ensure_dir(self, directory: Path) -> None:
        if directory in self._synced_dirs:
            return
        created = []
        d = directory
        while not d.exists():
            created.append(d)
            d = d.parent
        for new in reversed(created):
            new.mkdir(mode=0o700, exist_ok=True)
        for new in created:  # a new directory entry is durable once its parent is fsynced
            _fsync_dir(new.parent)
        self._synced_dirs.add(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_cached(path: Path) -> bytes | None:
    """The file's bytes if the page cache holds all of them, else None (read it in a thread)."""
    if _NOWAIT is None:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size > LOOP_READ_MAX:
            return None
        buf = bytearray(size)
        try:
            got = os.preadv(fd, [buf], 0, _NOWAIT)
        except (BlockingIOError, OSError):
            return None  # not cached (EAGAIN), or RWF_NOWAIT unsupported here (EOPNOTSUPP)
        return bytes(buf) if got == size else None
    finally:
        os.close(fd)
